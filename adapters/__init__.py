"""Framework glue (LangChain)."""
