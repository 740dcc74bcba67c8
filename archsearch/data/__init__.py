"""Data: one way to name it, two paths to the network.

A data source is named one way everywhere (``--data``, space and experiment files, study settings):
a registered name (``digits``, ``mnist5k``, ``cifar10``, ``cifar100``), ``imagefolder:PATH``,
``npz:FILE`` or ``module:callable`` / ``file.py:callable``, with options after ``?``
(:mod:`archsearch.data.sources`). It is resolved once into a :class:`DataSpec` (classes, channels,
image size, augmentation, split sizes) and loaded into fixed, normalised train / validation / test
splits (:mod:`archsearch.data.splits`) on one of two paths: **resident** (:class:`DataSplits`,
tensors on the device) or **streaming** (:class:`StreamingData`, loader workers). The trainer
takes batches from a feed (:mod:`archsearch.data.feed`) and never asks which path it got.

Modules: ``spec`` (what a set looks like; the registered sets), ``sources`` (parsing and reading
sources), ``samples`` (examples read one at a time), ``splits`` (splitting, statistics, the two
paths), ``feed`` (batches for the trainer).
"""
from __future__ import annotations

from .feed import Feed, ResidentFeed, StreamFeed, crop_flip, make_feed
from .sources import DATA_PATHS, DataOptions, Source, parse_source, resolve_source
from .spec import (DATA_ENV, DATA_SET_REGISTRY, DataSet, DataSpec, check_fits, dataset_names, default_data_dir,
                   get_dataset_spec, register_dataset)
from .splits import DataSplits, StreamingData, load_data, load_dataset

__all__ = [
    "DataSpec", "DataSplits", "StreamingData", "DataSet", "DATA_SET_REGISTRY", "register_dataset", "dataset_names",
    "get_dataset_spec", "load_dataset", "load_data", "check_fits", "default_data_dir", "crop_flip", "DATA_ENV",
    "DataOptions", "Source", "parse_source", "resolve_source", "DATA_PATHS", "Feed", "ResidentFeed", "StreamFeed",
    "make_feed",
]
