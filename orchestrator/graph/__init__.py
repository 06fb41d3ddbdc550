"""Graph files: the pydantic spec, the YAML loader with line positions, the expression
language, the compiler to a LangGraph ``StateGraph`` and the Mermaid drawing."""
