"""Replay decides permissions as the mount owner recorded in the state file did."""

import os

from pseudofs.files import perms
from pseudofs.fs.tree import Caller


def test_mount_owner_replaces_the_daemon_euid_while_replaying():
    other = os.geteuid() + 4242
    user = Caller(uid=other, gid=other, pid=1)
    assert not perms.privileged(user)
    with perms.mount_owner(other):
        assert perms.privileged(user)
        assert perms.privileged(Caller(uid=0))
    assert not perms.privileged(user)
    with perms.mount_owner(None):               # a state file without a recorded owner
        assert perms.privileged(Caller(uid=os.geteuid()))
