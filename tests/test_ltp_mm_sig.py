"""Linux behaviours the LTP's memory, signal, file and exec tests probe
(issue 14), each a differential test of a C program in tests/programs/."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_exec_of_a_file_open_for_writing_is_etxtbsy(programs: Programs) -> None:
    assert_same_as_native(programs.path("exec_txtbsy"), in_tmpdir=True, markers=(
        "own writer: 126 (ETXTBSY is 126)", "other writer: 126", "writer gone: 7",
        "reader only: 7"))


@pytest.mark.sandbox
def test_smaps_and_pagemap_show_resident_and_locked_pages(programs: Programs) -> None:
    assert_same_as_native(programs.path("proc_smaps"), markers=(
        "present: 1001010000000000", "unaligned read: -1 errno 22", "Rss:                  12 kB",
        "Locked:               16 kB", "locked flag: yes", "present after mlock: 1001010011110000",
        "rollup first: Rss:"))


@pytest.mark.sandbox
def test_splice_with_an_anonymous_inode_file_is_einval_without_waiting(
        programs: Programs) -> None:
    assert_same_as_native(programs.path("splice_anon"), markers=(
        "pipe -> epoll: -1 errno 22", "eventfd -> pipe: -1 errno 22",
        "pipe -> timerfd: -1 errno 22"))


@pytest.mark.sandbox
def test_unwritable_signal_frame_forces_a_sigsegv_the_program_may_handle(
        programs: Programs) -> None:
    assert_same_as_native(programs.path("sigframe_fail"), markers=(
        "usr1 handler ran: 0, segv handler ran: 1, si_code 0x80",
        "writable again: usr1 handler ran: 1, segv: 1, double kept: 1"))


@pytest.mark.sandbox
def test_file_mapping_past_the_file_end_is_sigbus_until_the_file_grows(
        programs: Programs) -> None:
    assert_same_as_native(programs.path("mmap_eof"), in_tmpdir=True, markers=(
        "-- file", "shared page 1 read: SIGBUS code 2 at +4101", "private page 1: SIGBUS code 2",
        "child: shared page 1: SIGBUS code 2", "child: private page 1: SIGBUS code 2",
        "shared page 1 after shrinking: SIGBUS code 2", "shared page 0 after shrinking: ok 98",
        "shared page 1 after mprotect: SIGBUS", "shared page 1 after growth: ok 103",
        "private page 1 after growth: ok 114", "shared page 2 after ftruncate: ok 119",
        "futex wake within the file: 0 errno 0", "futex wake after truncation: -1 errno 14"))


@pytest.mark.sandbox
def test_map_growsdown_grows_on_a_fault_below_but_keeps_the_guard_gap(
        programs: Programs) -> None:
    assert_same_as_native(programs.path("growsdown"), markers=(
        "touch 1 page below: exit 0", "touch 300 pages below: exit 0",
        "touch 290 pages above it: exit 0", "touch 100 pages above it: killed by signal 11"))


@pytest.mark.sandbox
def test_memfd_hugetlb_sizes_without_a_pool_are_enodev(programs: Programs) -> None:
    assert_same_as_native(programs.path("memfd_huge"), markers=(
        "64 KiB: failed errno 19", "16 GiB: failed errno 19",
        "2 MiB bits without MFD_HUGETLB: failed errno 22"))


@pytest.mark.sandbox
def test_proc_mounts_reports_epollpri_once_per_mount_table_change(programs: Programs) -> None:
    assert_same_as_native(programs.path("mounts_epoll"), in_tmpdir=True, markers=(
        "epoll_ctl add: 0", "unchanged: 0 events", "after mount: 1 events, pri 1 err 1",
        "again: 0 events", "poll: 1 revents 0x1", "after umount: 1 events, pri 1 err 1"))


@pytest.mark.sandbox
def test_msg_more_holds_data_until_the_last_part(programs: Programs) -> None:
    assert_same_as_native(programs.path("msg_more"), markers=(
        "tcp after more: -1 errno 11", "tcp after the last part: 17 errno 0",
        "tcp after shutdown: 5 errno 0", "tcp after close: 7 errno 0",
        "udp after two more: -1 errno 11", "udp datagram: 12 errno 0"))


@pytest.mark.sandbox
def test_multicast_memberships_are_per_socket_and_not_inherited_by_accept(
        programs: Programs) -> None:
    assert_same_as_native(programs.path("mcast_membership"), markers=(
        "join: 0 errno 0", "join again: -1 errno 98", "leave again: -1 errno 99",
        "ip_mreq join on a foreign address: -1 errno 19", "accepted socket leaves: -1 errno 99",
        "listener leaves: 0 errno 0"))


@pytest.mark.sandbox
def test_procmap_query_finds_the_vma_by_address_and_flags(programs: Programs) -> None:
    assert_same_as_native(programs.path("procmap_query"), markers=(
        "rw mapping: [+4096, +12288) flags 3 page 4096", "readable from prot none: errno 2",
        "readable or next: [+20480, +24576) flags 1", "short struct: errno 22"))
