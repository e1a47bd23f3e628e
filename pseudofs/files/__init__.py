"""The kernel's files as data: the rows of the file table (rows.py, table.py, cgroup.py), the
orders directories list in (kernfs.py) and cgroupfs permission rules (perms.py). No FUSE here:
fs/routes.py serves the table, boot.py and config_check.py apply and check writes through it."""
