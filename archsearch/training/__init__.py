"""Training and measuring one network: the recipe (``recipe``), the trainer with checkpoints
(``train``), data-parallel groups (``distributed``), measured and predicted latency (``latency``,
``latency_table``) and deployable exports (``export``)."""
