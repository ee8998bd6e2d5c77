"""Data in: the dataset file format, vocabularies and batches (`datasets`), and the book's built-in
tasks, generated into the data root on first use (`generators`)."""
from .datasets import (PAD, SPLIT_SEED, START, BuiltinDatasetWarning, Dataset, DatasetError, OutOfVocabulary, Vocab,
                       batch_indices, data_root, dataset_path, encode_questions, load_dataset, read_examples,
                       split_indices, unpad)
from .generators import BUILTIN_TASKS

__all__ = ["BUILTIN_TASKS", "PAD", "SPLIT_SEED", "START", "BuiltinDatasetWarning", "Dataset", "DatasetError",
           "OutOfVocabulary", "Vocab", "batch_indices", "data_root", "dataset_path", "encode_questions",
           "load_dataset", "read_examples", "split_indices", "unpad"]
