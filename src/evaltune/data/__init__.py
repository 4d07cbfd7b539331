"""The data step: records on disk -> checked conversations -> token ids with a loss mask -> batches."""

from evaltune.data.batching import batch_for_step, collate
from evaltune.data.prepare import DataReport, prepare_training_data
from evaltune.data.records import DroppedRecord, LoadedRecords, load_training_records
from evaltune.data.render import TokenizedExample, render_conversation

__all__ = [
    "DataReport",
    "prepare_training_data",
    "DroppedRecord",
    "LoadedRecords",
    "TokenizedExample",
    "batch_for_step",
    "collate",
    "load_training_records",
    "render_conversation",
]
