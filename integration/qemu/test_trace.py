#!/usr/bin/env python3
"""migrate.py --trace's verdicts on made-up logs and RAM files: each way a page can differ is
named for what happened to it, and a page the decoder wrote otherwise than the encoder was given
is counted even where a later write hid it. Run by ci.sh; needs no QEMU."""

import os
import tempfile
import unittest

from migrate import PAGE, compare_files, trace_hash, trace_report


def page(byte):
    return bytes([byte]) * PAGE


class TraceReport(unittest.TestCase):
    def report(self, src_pages, dst_pages, src_log, dst_log):
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "trace")
            os.makedirs(trace)
            for name, pages in (("src.ram", src_pages), ("dst.ram", dst_pages)):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(b"".join(pages))
            for name, lines in list(src_log.items()) + list(dst_log.items()):
                with open(os.path.join(trace, name), "w") as f:
                    f.write("".join(line + "\n" for line in lines))
            src_ram, dst_ram = os.path.join(d, "src.ram"), os.path.join(d, "dst.ram")
            _, differing, _ = compare_files(src_ram, dst_ram)
            return trace_report(trace, src_ram, dst_ram, differing)

    def test_each_way_a_page_differs_is_told_apart(self):
        h = lambda b: f"{trace_hash(page(b)):016x}"
        # page 0: stored to after its last sending; 1: applied otherwise than sent; 2: never
        # sent; 3: changed on the destination after it was applied; 4: noted zero, written as
        # zeros; 5: sent, applied, unchanged
        src = [page(2), page(3), page(4), page(5), page(0), page(6)]
        dst = [page(1), page(9), page(0), page(8), page(0), page(6)]
        src_log = {"src.0.log": [f"S 1 0 {h(1)}", f"S 1 1000 {h(3)}", f"S 2 3000 {h(5)}",
                                 "Z 3 4000", f"S 3 5000 {h(6)}"]}
        dst_log = {"dst.0.log": [f"D 0 {h(1)}", f"D 1000 {h(9)}", f"D 3000 {h(5)}", "Z 4000",
                                 f"D 5000 {h(6)}", "D 5000"]}  # a line cut short at the end
        r = self.report(src, dst, src_log, dst_log)
        self.assertEqual(r["differing"], {"stored_to_after_last_sending": 1,
                                          "applied_not_as_sent": 1, "never_sent": 1,
                                          "changed_on_destination_after_applying": 1,
                                          "unexplained": 0})
        self.assertEqual(r["differing_first"]["applied_not_as_sent"], ["0x1000"])
        self.assertEqual((r["pages_sent"], r["pages_applied"], r["applied_not_as_sent"]),
                         (5, 5, 1))
        self.assertEqual((r["sent_never_applied"], r["on_two_channels"]), (0, 0))

    def test_a_wrong_version_later_overwritten_still_counts(self):
        h = lambda b: f"{trace_hash(page(b)):016x}"
        # the files agree, but the destination's last write of page 0 was not what was sent
        # (then something else wrote the right contents): the trace still names it
        r = self.report([page(1)], [page(1)], {"src.0.log": [f"S 1 0 {h(1)}"]},
                        {"dst.0.log": [f"D 0 {h(2)}"]})
        self.assertEqual(r["applied_not_as_sent"], 1)
        self.assertEqual(sum(r["differing"].values()), 0)

    def test_pages_whose_every_hash_agrees_yet_differ_are_unexplained(self):
        # a hash that collides on every page: the logs then agree with both files, which differ
        import migrate
        real = migrate.trace_hash
        migrate.trace_hash = lambda _page: 7
        try:
            r = self.report([page(1)], [page(2)], {"src.0.log": ["S 1 0 0000000000000007"]},
                            {"dst.0.log": ["D 0 0000000000000007"]})
        finally:
            migrate.trace_hash = real
        self.assertEqual(r["differing"]["unexplained"], 1)
        self.assertEqual(sum(r["differing"].values()), 1)

    def test_pages_on_two_channels_and_never_applied_are_counted(self):
        h = lambda b: f"{trace_hash(page(b)):016x}"
        r = self.report([page(1), page(2)], [page(1), page(0)],
                        {"src.0.log": [f"S 1 0 {h(1)}"], "src.1.log": [f"S 1 0 {h(1)}",
                                                                       f"S 1 1000 {h(2)}"]},
                        {"dst.0.log": [f"D 0 {h(1)}"]})
        self.assertEqual((r["on_two_channels"], r["sent_never_applied"]), (1, 1))
        self.assertEqual(r["differing"]["applied_not_as_sent"], 1)


if __name__ == "__main__":
    unittest.main()
