"""The root exception of driftd; each package defines small subclasses of it."""


class DriftdError(Exception):
    """Base class for every error driftd raises on purpose."""


class ConfigError(DriftdError):
    """The configuration is invalid; the message names each key, value and expectation."""


class CheckpointError(DriftdError):
    """A checkpoint could not be saved or restored."""


class PartitionLost(CheckpointError):
    """Another owner checkpointed these partitions since this one restored or saved them (a
    rebalance this instance has not heard of yet): its state is stale and was not saved."""

    def __init__(self, message: str, partitions: list[int]) -> None:
        super().__init__(message)
        self.partitions = partitions


class StateVersionError(CheckpointError):
    """A persisted blob has a version this build cannot read."""


class SourceError(DriftdError):
    """A source could not be opened, read or positioned."""
