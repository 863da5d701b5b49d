"""Framework glue. LangChain: ``from promptpress.adapters.langchain import ...`` (the 'langchain' extra).

Importing any adapter without that extra raises `promptpress.compressor.extras.MissingExtra`, whose
message names the extra and how to install it.
"""

from promptpress.compressor.extras import require

require("the LangChain adapters", "langchain")
