"""The two kinds of cumulative family, named in each one's help: kept in the checkpoint (it
continues across restarts) or counted by this process (from 0 at start). Tests hold every
counter and histogram to exactly one kind."""

RESTORED = " Kept in the checkpoint: continues across restarts."
"""The sentence that ends the help of every family read from the checkpointed state."""
PROCESS_LOCAL = "since the process started"
"""The phrase in the help of every process-local family."""
