"""fastconv.interpret: how a CNN sees. Receptive fields, feature maps, maximally activating
patches, class-model and unit visualisation, saliency / SmoothGrad / integrated gradients /
guided backprop / Grad-CAM, filters, and Pillow pictures of all of them (render).

Every routine takes any fastconv.nn.Sequential (LeNet-5, AlexNet, VGG, models.vgg(cfg)),
batches its work, and runs on the device the model lives on."""
from fastconv.interpret import render
from fastconv.interpret.activations import feature_maps
from fastconv.interpret.attribution import (grad_cam, guided_backprop, integrated_gradients, saliency,
                                            smoothgrad)
from fastconv.interpret.filters import (SOBEL_HORIZONTAL, SOBEL_VERTICAL, WorkedExample, first_layer_filters,
                                        lecture_example, sobel)
from fastconv.interpret.optimize import Robust, Trace, Visualization, class_model, maximize_activation
from fastconv.interpret.patches import TopPatches, top_patches
from fastconv.interpret.receptive_field import ReceptiveField, receptive_field

__all__ = ["ReceptiveField", "Robust", "SOBEL_HORIZONTAL", "SOBEL_VERTICAL", "TopPatches", "Trace", "Visualization",
           "WorkedExample", "class_model", "feature_maps", "first_layer_filters", "grad_cam", "guided_backprop",
           "integrated_gradients", "lecture_example", "maximize_activation", "receptive_field", "render", "saliency",
           "smoothgrad", "sobel", "top_patches"]
