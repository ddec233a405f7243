"""Feature extraction: registered models, data sources and the on-disk feature store."""

from __future__ import annotations

from glocal._device import resolve_device
from glocal.features.encoder import FeatureModel, load_model
from glocal.features.extract import ExtractionPlan, extract_features, plan_extraction
from glocal.features.models import (
    ModelConfig,
    get_config,
    list_models,
    read_model_configs,
    register_model,
)
from glocal.features.shards import ShardSource, extract_sharded
from glocal.features.sources import (
    DatasetSource,
    ImagePaths,
    Source,
    TextSource,
    downstream_source,
    image_folder,
    image_list,
    resolve_source,
    similarity_images,
    things_images,
    things_texts,
    torchvision_dataset,
)
from glocal.features.store import (
    FeatureStore,
    cache_root,
    check_compatible,
    load_features,
    model_folder,
    store_path,
)

__all__ = [
    "DatasetSource",
    "ExtractionPlan",
    "FeatureModel",
    "FeatureStore",
    "ImagePaths",
    "ModelConfig",
    "ShardSource",
    "Source",
    "TextSource",
    "cache_root",
    "check_compatible",
    "extract_features",
    "extract_sharded",
    "get_config",
    "downstream_source",
    "image_folder",
    "image_list",
    "list_models",
    "load_features",
    "model_folder",
    "load_model",
    "plan_extraction",
    "read_model_configs",
    "register_model",
    "resolve_device",
    "resolve_source",
    "similarity_images",
    "store_path",
    "things_images",
    "things_texts",
    "torchvision_dataset",
]
