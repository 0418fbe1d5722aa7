"""Explanations: Grad-CAM maps of faces, overlays, and the per-image and per-dataset figures.

`gradcam` holds the maps and overlays; `grids` draws the figures; `run` ties them to files
(images through detection, or a FER2013 split). pytorch-grad-cam and matplotlib are imported
only inside the functions that use them.
"""

from .gradcam import cam_and_probs, gradcam_maps, overlay

__all__ = ["cam_and_probs", "gradcam_maps", "overlay"]
