"""Experiments on the synthetic world, built on the library (which never imports them): the CLIP
world evaluation, ImageBind's two-stage binding recipe, the caption ceiling and the whole
pipeline behind the README's main job."""
