"""Local grading time per answer over the whole bank, with synthetic answers.

    .venv/bin/python -m bench.grade [CONTENT_DIR] [--rounds 3]

Every question and follow-up of the bank (content/ by default) is graded with three synthetic
answers: its reference answer, the text of half of its key points (every other one), and an
off-topic paragraph. Prints how many answers were graded, the median and p99 time per answer,
wall (perf_counter) and CPU (process_time), for the first pass (cold caches) and the later passes,
and what the grader found in each kind of answer as a sanity check (a key point left out of the
"half" answer yet marked covered is a claim the answer does not support). Target: median ≤ 2 ms.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bot.content import check
from bot.grading import grade_locally
from bot.models import Question

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 2.0
HALF = "half the key points"
OFF_TOPIC = ("周末我们去爬山了，天气很好，山顶的风景特别美。下山以后找了一家面馆，"
             "点了牛肉面和凉拌黄瓜，老板还送了一壶茶。"
             "We walked about ten kilometres and took the bus home before dinner.")


def synthetic_answers(question: Question) -> list[tuple[str, str]]:
    answers = [("reference", question.answer),
               (HALF, "；".join(p.text for p in question.key_points[::2])),
               ("off-topic", OFF_TOPIC)]
    return [(kind, text) for kind, text in answers if text.strip()]


def ms(values: list[int]) -> str:
    median = statistics.median(values) / 1e6
    p99 = statistics.quantiles(values, n=100)[98] / 1e6 if len(values) > 1 else median
    return f"median {median:.3f} ms   p99 {p99:.3f} ms"


def main(content: Path, rounds: int) -> None:
    bank, problems = check([content], strict=False)
    questions = list(bank.by_id.values())
    points = [p for q in questions for p in q.key_points]
    with_terms = sum(1 for p in points if p.terms)
    print(f"bank {content}: {len(bank.questions)} questions + {len(questions) - len(bank.questions)} follow-ups, "
          f"{with_terms} of {len(points)} key points with terms"
          + (f" ({len(problems)} content problems ignored)" if problems else ""))
    if not with_terms:
        print("  no key point has terms: the grader falls back to the key points' wording alone")
    work = [(q, kind, text) for q in questions for kind, text in synthetic_answers(q)]
    passes, found = [], {}
    for number in range(rounds):
        wall, cpu = [], []
        for question, kind, text in work:
            w0, c0 = time.perf_counter_ns(), time.process_time_ns()
            verdict = grade_locally(question, text)
            cpu.append(time.process_time_ns() - c0)
            wall.append(time.perf_counter_ns() - w0)
            if number == 0:
                tally = found.setdefault(kind, [0, 0, 0, 0, 0])
                tally[0] += len(verdict.covered)
                tally[1] += len(question.key_points)
                tally[2] += bool(verdict.covered)
                if kind == HALF:  # the points left out of the answer: a claim on one is a leak
                    left_out = set(range(1, len(question.key_points), 2))
                    tally[3] += len(left_out & set(verdict.covered))
                    tally[4] += len(left_out)
        passes.append((wall, cpu))
    print(f"graded {len(work)} answers per pass × {rounds} passes")
    first_wall, first_cpu = passes[0]
    print(f"  first pass (cold caches)  wall {ms(first_wall)}   cpu {ms(first_cpu)}")
    if rounds > 1:
        wall = [t for w, _ in passes[1:] for t in w]
        cpu = [t for _, c in passes[1:] for t in c]
        print(f"  later passes              wall {ms(wall)}   cpu {ms(cpu)}")
    else:
        wall = first_wall
    median = statistics.median(wall) / 1e6
    print(f"  target median ≤ {TARGET_MS:g} ms: {'met' if median <= TARGET_MS else 'NOT met'} ({median:.3f} ms)")
    for kind, (covered, total, answers, leaked, left_out) in found.items():
        count = len([1 for _, k, _ in work if k == kind])
        print(f"  {kind:20} key points marked covered {covered / total:6.1%}; "
              f"answers with any point marked {answers}/{count}"
              + (f"; points left out yet marked {leaked}/{left_out} ({leaked / left_out:.1%})" if left_out else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", nargs="?", type=Path, default=ROOT / "content",
                        help="a content folder (default: the bank in content/)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the bank (the first runs cold)")
    args = parser.parse_args()
    main(args.content, max(1, args.rounds))
