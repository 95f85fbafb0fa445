"""The embedded model ("tiny"): its tokenizer, its training aids and its reproduction.

This package holds what only a model trained from scratch on ST-Synth needs
(a tokenizer trained on ST-Synth text, the dense auxiliary supervision of
stage 0, geometric coordinate tables); the model itself is the ordinary
:class:`~llava_st.model.LlavaSTModel`, saved in the release layout.
"""
