"""Training: the phases of one trial (warm-up, search, fine-tune), checkpoints and the events they emit."""
from .checkpoint import atomic_write_bytes, atomic_write_text, load_checkpoint, save_checkpoint
from .events import Event, EventBus
from .loop import evaluate, train_float
from .phases import TrialRunner

__all__ = ["Event", "EventBus", "TrialRunner", "atomic_write_bytes", "atomic_write_text", "evaluate",
           "load_checkpoint", "save_checkpoint", "train_float"]
