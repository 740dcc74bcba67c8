"""Reference CIFAR networks of two pruning papers, as plain torch modules.

Liu et al. 2018, "Rethinking the Value of Network Pruning" (arXiv:1810.05270), and Crowley et al.
2018, "A Closer Look at Structured Pruning for Neural Network Compression" (arXiv:1810.04622),
prune and retrain a handful of standard CIFAR networks. This zoo writes those networks out so that
pruning results here can be compared against the same starting points:

* ``vgg19_bn``: Network Slimming's VGG-19 with BN (20.04M parameters);
* ``resnet56``: He et al.'s ResNet-56 with the parameter-free option-A shortcut (0.85M);
* ``preresnet164``: Network Slimming's pre-activation bottleneck ResNet-164 (1.70M);
* ``densenet40`` and ``densenet_bc_100``: DenseNet-40 (k = 12) and DenseNet-BC-100 (k = 12);
* ``mobilenet_v2_cifar``: MobileNetV2 with CIFAR strides.

``vgg``, ``resnet_cifar``, ``preresnet_bottleneck`` and ``densenet`` build other sizes. Every
constructor takes ``num_classes`` and ``in_channels``, and every net ends in a global average pool,
so small variants run on 8x8 single-channel digits too.

The modules use only convs, batch norm, linear layers, ReLU/ReLU6, pooling, ``torch.flatten``,
``torch.cat``, additions and (for option A) slicing with zero channel padding, with no Python
branching on tensor values, so ``torch.fx.symbolic_trace`` traces them, and so can
``archsearch import archsearch.zoo:vgg19_bn --input 3x32x32``. Each file imports only torch and can
be copied on its own. Weights keep torch's default initialisation.
"""
from .densenet import densenet, densenet40, densenet_bc_100
from .mobilenetv2 import mobilenet_v2_cifar
from .resnet import preresnet164, preresnet_bottleneck, resnet56, resnet_cifar
from .vgg import vgg, vgg19_bn

__all__ = [
    "densenet",
    "densenet40",
    "densenet_bc_100",
    "mobilenet_v2_cifar",
    "preresnet164",
    "preresnet_bottleneck",
    "resnet56",
    "resnet_cifar",
    "vgg",
    "vgg19_bn",
]
