"""Framework glue. LangChain: ``from promptpress.adapters.langchain import ...`` (needs langchain-core)."""
