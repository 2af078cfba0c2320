"""The question bank: the shipped bank passes its own guard; broken files are named precisely."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bot.content import check

from .conftest import write_bank

ROOT = Path(__file__).resolve().parent.parent


def quizbot(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quizbot.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def edit(folder: Path, slug: str, change) -> None:
    path = folder / f"{slug}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_the_shipped_bank_passes_content_check():
    done = quizbot("content", "check")
    assert done.returncode == 0, done.stdout
    bank, _ = check([ROOT / "content"])
    assert len(bank.topics) >= 15 and all(len(t.questions) >= 10 for t in bank.topics.values())
    on_a_path = {slug for plan in bank.plans.values() for week in plan.weeks for slug in week}
    assert len(bank.plans) >= 4 and {"reasoning", "inference-systems", "modern-architecture", "multimodal"} <= on_a_path


def test_the_bank_teaches_the_2026_interview():
    """What issue 9 promised: new questions from sources beyond the seeds, each with a follow-up;
    follow-ups on at least 200 of the seed questions; terms on every key point."""
    bank, _ = check([ROOT / "content"])
    questions = list(bank.questions.values())
    new = [q for q in questions if not all(s.startswith("seed ") for s in q.source)]
    assert len(new) >= 150 and all(q.follow_ups for q in new)
    assert sum(bool(q.follow_ups) for q in questions if q not in new) >= 200
    assert all(p.terms for q in bank.by_id.values() for p in q.key_points)
    assert {"reasoning", "inference-systems", "modern-architecture", "multimodal"} <= set(bank.topics)


def test_a_missing_field_names_file_question_and_field(tmp_path):
    folder = write_bank(tmp_path / "content")
    edit(folder, "rag", lambda d: d["questions"][1].pop("difficulty"))
    done = quizbot("content", "check", str(folder))
    assert done.returncode == 1
    assert f"{folder / 'rag.yaml'}: rag-002: difficulty: Field required" in done.stdout.splitlines()


def test_duplicate_ids_across_files_are_reported(tmp_path):
    folder = write_bank(tmp_path / "content")
    edit(folder, "rag", lambda d: d["questions"][0].update(id="attention-002"))
    _, problems = check([folder])
    assert any("attention-002: id: duplicate" in p and "attention.yaml" in p for p in problems)


def test_near_duplicate_questions_are_reported_across_files(tmp_path):
    folder = write_bank(tmp_path / "content")
    edit(folder, "rag", lambda d: d["questions"][0].update(q="什么是自注意力呢？"))
    _, problems = check([folder])
    assert any("rag-001: q: near-duplicate of attention-001" in p for p in problems)


def test_short_answers_too_few_key_points_and_no_source_are_reported(tmp_path):
    folder = write_bank(tmp_path / "content")

    def damage(data):
        data["questions"][0].update(answer="太短", key_points=["一个"], source=[])
    edit(folder, "rlhf", damage)
    _, problems = check([folder])
    assert any("rlhf-001: answer: 2 characters" in p for p in problems)
    assert any("rlhf-001: key_points: 1 given" in p for p in problems)
    assert any("rlhf-001: source: missing" in p for p in problems)


def test_a_yaml_syntax_error_names_file_and_line(tmp_path):
    folder = write_bank(tmp_path / "content")
    (folder / "broken.yaml").write_text("topic: broken\nquestions:\n  - id: [unclosed\n", encoding="utf-8")
    _, problems = check([folder])
    assert any(p.startswith(f"{folder / 'broken.yaml'}:") and "YAML syntax error" in p for p in problems)


def test_an_unknown_plan_topic_is_reported(tmp_path):
    folder = write_bank(tmp_path / "content")
    plans = {"plans": [{"id": "sprint", "title": "冲刺", "title_en": "Sprint", "weeks": [["rag", "quantum"]]}]}
    (folder / "plans.yaml").write_text(yaml.safe_dump(plans, allow_unicode=True), encoding="utf-8")
    _, problems = check([folder])
    assert f"{folder / 'plans.yaml'}: sprint: weeks.1: unknown topic 'quantum'" in problems


def test_the_bot_refuses_to_start_on_a_broken_bank_and_says_why(tmp_path):
    folder = write_bank(tmp_path / "content")
    edit(folder, "rag", lambda d: d["questions"][1].update(difficulty=7))
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = quizbot("run", cwd=tmp_path)
    assert done.returncode == 2 and "rag-002: difficulty" in done.stderr and "Traceback" not in done.stderr


MARKDOWN = {
    "numbered": "# 面试题\n1. 什么是 KV Cache？\n2、为什么需要重排？\n3) Speculative decoding 的原理\n",
    "bulleted": "## 推理篇\n- 什么是 KV Cache？\n  * 为什么需要重排？\n• Speculative decoding 的原理\n",
    "headings": "# 推理篇\n## 什么是 KV Cache？\n### 为什么需要重排？\n### Speculative decoding 的原理\n",
}


def test_import_reads_each_list_style_and_skips_what_the_bank_has(tmp_path):
    for style, text in MARKDOWN.items():
        folder = write_bank(tmp_path / style / "content")  # the bank already has "为什么需要重排？"
        source = tmp_path / style / "notes.md"
        source.write_text(text, encoding="utf-8")
        done = quizbot("content", "import", str(source), "--topic", "inference", "--content", str(folder))
        assert done.returncode == 0, done.stderr
        added = yaml.safe_load((folder / "inference.yaml").read_text(encoding="utf-8"))["questions"]
        assert [q["q"] for q in added] == ["什么是 KV Cache？", "Speculative decoding 的原理"], style
        assert [q["id"] for q in added] == ["inference-001", "inference-002"]
        assert "skipped 1 already in the bank" in done.stdout
        check_run = quizbot("content", "check", str(folder))
        assert check_run.returncode == 1 and "inference-001: answer: missing" in check_run.stdout


def test_content_stats_counts_questions_per_topic(tmp_path):
    folder = write_bank(tmp_path / "content")
    done = quizbot("content", "stats", str(folder))
    line = next(l for l in done.stdout.splitlines() if l.startswith("attention"))
    # questions, basic, intermediate, advanced, answered, with follow-ups, follow-ups, key points, with terms, cited
    assert line.split()[1:] == ["4", "2", "1", "1", "4", "0", "0", "12", "12", "0"]


def test_import_keeps_narrative_lines_out_and_knows_fuller_wordings(tmp_path):
    folder = write_bank(tmp_path / "content")  # the bank has "什么是检索增强生成？"
    source = tmp_path / "notes.md"
    source.write_text("- 检索增强生成\n"  # a topic name, not a question
                      "- 个人觉得面试题没有太多复杂的问题，八股文比之前少很多，但是绝对不可以不准备，好几次挂在这上面，"
                      "别小瞧它，项目经历更重要，要能讲清楚细节和效果评估。\n"
                      "- 什么是检索增强生成\n"  # the bank words it as a full question
                      "- LoRA 的原理是什么？\n", encoding="utf-8")
    done = quizbot("content", "import", str(source), "--topic", "peft", "--content", str(folder))
    added = yaml.safe_load((folder / "peft.yaml").read_text(encoding="utf-8"))["questions"]
    assert [q["q"] for q in added] == ["LoRA 的原理是什么？"]
    assert "skipped 1 already in the bank, 2 line(s) that are not questions" in done.stdout


def test_key_point_terms_are_required_distinct_and_no_bigger_than_their_point(tmp_path):
    folder = write_bank(tmp_path / "content")

    def change(data):
        points = data["questions"][0]["key_points"]
        points[0]["terms"] = []
        points[1]["terms"] = ["KV cache", "kv  CACHE"]                          # the same term, twice
        points[2]["terms"] = ["a term saying more than its point"]
    edit(folder, "rag", change)
    _, problems = check([folder])
    assert any("rag-001: key_points.0: terms: missing" in p for p in problems)
    assert any("rag-001: key_points.1: terms: 'kv  CACHE' is listed twice" in p for p in problems)
    assert any("rag-001: key_points.2: terms:" in p and "longer than the key point" in p for p in problems)


def test_text_that_would_not_render_as_written_is_refused(tmp_path):
    folder = write_bank(tmp_path / "content")

    def change(data):
        first, second, third = data["questions"]
        first["answer"] += "\nKL 散度写作 `KL(p || q)`。"                          # a spoiler delimiter in old clients
        second["answer"] += "\n这里 **没有闭合"
        third["answer"] += "\n```python\nx = 1"                                   # a fence never closed
        third["key_points"][0]["text"] = "范数 ||x||"
    edit(folder, "rag", change)
    _, problems = check([folder])
    assert any("rag-001: answer: '||' outside a code block" in p for p in problems)
    assert any("rag-002: answer: an unbalanced ** (bold)" in p for p in problems)
    assert any("rag-003: answer: a ``` fence" in p for p in problems)
    assert any("rag-003: key_points.0: text: '||'" in p for p in problems)


def test_follow_ups_are_checked_like_questions(tmp_path):
    folder = write_bank(tmp_path / "content", follow_ups=1)

    def change(data):
        follow_up = data["questions"][0]["follow_ups"][0]
        follow_up["answer"] = "太短"
        follow_up["key_points"][0]["terms"] = []
    edit(folder, "rag", change)
    _, problems = check([folder])
    assert any("rag-001: follow_ups.1: answer: 2 characters" in p for p in problems)
    assert any("rag-001: follow_ups.1: key_points.0: terms: missing" in p for p in problems)
    bank, _ = check([write_bank(tmp_path / "clean", follow_ups=2)])
    assert [f.id for f in bank.questions["rag-001"].follow_ups] == ["rag-001-f1", "rag-001-f2"]
    assert bank.by_id["rag-001-f2"].parent == "rag-001"


def test_content_stats_show_follow_ups_terms_and_cited_sources():
    done = quizbot("content", "stats")
    assert done.returncode == 0
    header, *rows = done.stdout.splitlines()
    assert "follow-ups" in header and "w/ terms" in header and "cited" in header
    total = next(r for r in rows if r.startswith("total")).split()
    assert int(total[1]) >= 700 and int(total[-1]) >= 150                    # questions; citing beyond the seeds
