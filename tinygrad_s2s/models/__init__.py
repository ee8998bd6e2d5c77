"""Models as plugins: the registry (`register_model`, `create_model`, discovery by entry points), the
contract every model keeps (`contract`), and `Seq2seqModel`, the base class whose three hooks give a
model its loss, greedy and sampled decoding and beam search (`base`, `decoding`)."""
from .registry import (UnknownModelError, available_models, create_model, register_model, registered_name)
from .contract import CONTRACT, ContractError
from .base import Seq2seqModel, as_ids, check_pair

__all__ = ["CONTRACT", "ContractError", "Seq2seqModel", "UnknownModelError", "as_ids", "available_models",
           "check_pair", "create_model", "register_model", "registered_name"]
