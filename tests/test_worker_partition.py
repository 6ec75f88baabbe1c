"""Lesson 05's real partition: a namespace joined by a veth link that `cut()` takes down."""

import subprocess

import pytest

from pirate_helpers.course import worker_partition as partition


def test_without_root_it_says_why_in_one_line(monkeypatch):
    monkeypatch.setattr(partition.os, "geteuid", lambda: 1000)
    with pytest.raises(partition.Unavailable, match="needs root"), partition.linked_namespace():
        pass


def test_the_namespace_and_its_link_are_removed_afterwards():
    try:
        with partition.linked_namespace() as link:
            namespace = link.namespace
            assert namespace in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                               text=True, check=True).stdout
            link.cut()
            link.heal()
    except partition.Unavailable as why:
        pytest.skip(str(why))
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in listed.split()
    assert subprocess.run(["ip", "link", "show", link.device], capture_output=True).returncode
