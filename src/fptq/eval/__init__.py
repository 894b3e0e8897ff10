"""Evaluation: perplexity, zero-shot tasks, MMLU."""

# --- downstream tasks (fptq.eval.tasks / fptq.eval.loglik; owned by the tasks work) ---
from fptq.eval.tasks import TASKS, format_task_table, run_tasks  # noqa: E402

__all__ = ["TASKS", "run_tasks", "format_task_table"]
# --- end downstream tasks ---
