"""`model-export`: Hugging Face TrOCR checkpoint -> ONNX (optimum) -> int8 -> signed model bundle for the edge node.

Runs offline on a local checkpoint folder, or fetches a hub id where the machine has hub access. Needs the
`[export]` extra (torch, transformers, optimum); the bundles it writes need only the `[edge]` extra to run.
"""
