"""GetCallerIdentity: the account and principal of the access key that signed the request.

Every Kiln access key belongs to an account as a whole (Kiln has no IAM users), which is what
AWS calls the account's root user, so the answer is AWS's for root access keys: ``UserId`` and
``Account`` are the account id and ``Arn`` is ``arn:aws:iam::<account>:root``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def get_caller_identity(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return {"UserId": ctx.account_id, "Account": ctx.account_id, "Arn": root_arn(ctx.account_id)}
