"""The model side: loading and batched scoring. The only package that imports torch or transformers."""
