"""Language models behind one streaming, cancellable interface."""

from peer_remote.llm.base import ChatMessage, LanguageModel, LlmError

__all__ = ["ChatMessage", "LanguageModel", "LlmError"]
