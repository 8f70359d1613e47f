"""driftd's registry HTTP API (FastAPI): reads for viewers, writes for approvers, audit
verification for admins, all under ``/api/v1``.

There are deliberately no token-management endpoints: tokens are created (and revoked) from
the CLI on the server (``driftd token create``), so a leaked API token can never mint another
one, and there is no default token or password.
"""

from driftd.api.app import create_app

__all__ = ["create_app"]
