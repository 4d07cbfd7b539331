"""The data step: a training file -> checked, deduplicated, decontaminated conversations ->
token ids with a loss mask -> batches, with a report of every record dropped and why."""

from inspect_tinker.data.batching import batch_for_step, collate
from inspect_tinker.data.decontamination import EvalInput, evaluation_inputs
from inspect_tinker.data.prepare import CheckedRecords, NoTrainingData, check_training_records, prepare_training_data
from inspect_tinker.data.records import Conversation, InvalidRecord, record_to_conversation
from inspect_tinker.data.render import TokenizedExample, end_of_turn_token_ids, render_conversation
from inspect_tinker.data.report import DataReport

__all__ = [
    "CheckedRecords",
    "Conversation",
    "DataReport",
    "EvalInput",
    "InvalidRecord",
    "NoTrainingData",
    "TokenizedExample",
    "batch_for_step",
    "check_training_records",
    "collate",
    "end_of_turn_token_ids",
    "evaluation_inputs",
    "prepare_training_data",
    "record_to_conversation",
    "render_conversation",
]
