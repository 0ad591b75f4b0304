"""The model catalog: GGUF files from config, directories, the Ollama store and the Hugging Face cache."""

from llmhost.models.catalog import Catalog, ModelEntry, Source
from llmhost.models.gguf_meta import GgufMeta, read_gguf_meta
from llmhost.models.names import display_name_for_file, validate_model_name

__all__ = [
    "Catalog",
    "GgufMeta",
    "ModelEntry",
    "Source",
    "display_name_for_file",
    "read_gguf_meta",
    "validate_model_name",
]
