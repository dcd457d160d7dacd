"""FID and KID on pytorch-fid's Inception features, offline.

Features are the 2048-d final average-pool activations of the "FID Inception" (the TensorFlow
``inception-2015-12-05`` graph, as ported by pytorch-fid), taken through pytorch-fid's own
:class:`pytorch_fid.inception.InceptionV3`.

- FID: the Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al., 2017).
- KID: the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1) ** 3``, averaged over random subsets (Bińkowski et al., ICLR 2018).
- Precision and recall (Kynkäänniemi et al., NeurIPS 2019) on the same features: how much of the
  generated set is realistic, and how much of the real set it covers.

Weights are never downloaded (:func:`find_inception_weights`). Reference statistics of real data
are computed once per (dataset, resolution, preprocessing, weights) and cached as ``.npz``
(:func:`reference_stats`). Real images arrive as the uint8 tensors of
:func:`fwp.gan.data.load_images` at the training resolution; generated images are quantised to
uint8 the same way (:func:`evaluate_generator`), so both go through one path into the network.

Modules, one concern each: :mod:`~fwp.gan.metrics.weights` (finding and converting weights),
:mod:`~fwp.gan.metrics.inception` (the network), :mod:`~fwp.gan.metrics.distances` (FID, KID,
precision and recall maths), :mod:`~fwp.gan.metrics.stats` (feature statistics, their comparison
and files),
:mod:`~fwp.gan.metrics.reference` (cached statistics of real data),
:mod:`~fwp.gan.metrics.evaluate` (generators and runs), :mod:`~fwp.gan.metrics.diversity`
(near-duplicate samples, a direct count of repeats that FID and KID only average over).
"""

from .distances import frechet_distance, kid, precision_recall
from .diversity import NEAR_DUPLICATE_RMS, NearDuplicates, near_duplicates, pairwise_rms
from .evaluate import (
    DIVERSITY_SAMPLES,
    RunEvaluator,
    SupportsSample,
    compare_image_sets,
    evaluate_generator,
    evaluate_run,
)
from .inception import FEATURE_DIM, INCEPTION_SIZE, InceptionFeatures
from .reference import reference_stats, reference_stats_path
from .stats import (
    KID_FEATURES,
    STATS_VERSION,
    FeatureStats,
    MetricResult,
    compare_stats,
    feature_stats,
    load_stats,
    save_stats,
)
from .weights import (
    FID_WEIGHTS_ENV,
    FID_WEIGHTS_NAME,
    InceptionWeightsError,
    convert_torchscript_inception,
    fid_inception_skeleton,
    find_inception_weights,
)

#: The former private name of :func:`fid_inception_skeleton` (the test helpers build random
#: weights with it).
_fid_inception_skeleton = fid_inception_skeleton

__all__ = [
    "DIVERSITY_SAMPLES",
    "FEATURE_DIM",
    "FID_WEIGHTS_ENV",
    "FID_WEIGHTS_NAME",
    "INCEPTION_SIZE",
    "KID_FEATURES",
    "NEAR_DUPLICATE_RMS",
    "STATS_VERSION",
    "FeatureStats",
    "InceptionFeatures",
    "InceptionWeightsError",
    "MetricResult",
    "NearDuplicates",
    "RunEvaluator",
    "SupportsSample",
    "compare_image_sets",
    "compare_stats",
    "convert_torchscript_inception",
    "evaluate_generator",
    "evaluate_run",
    "feature_stats",
    "fid_inception_skeleton",
    "find_inception_weights",
    "frechet_distance",
    "kid",
    "load_stats",
    "near_duplicates",
    "pairwise_rms",
    "precision_recall",
    "reference_stats",
    "reference_stats_path",
    "save_stats",
]
