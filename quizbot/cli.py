"""`quizbot run | push | health | backup | export | content check | content stats | content import` — see README.md."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import DEFAULT_CONTENT, ConfigError, load_settings
from bot.content import ContentError, check
from bot.storage import NewerSchema, StorageUnavailable
from bot.version import package_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quizbot", description="A chat-bot quizmaster for LLM interviews.")
    parser.add_argument("--version", action="version", version=f"quizbot {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the bot (console mode when no platform is configured)")
    run.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    push = commands.add_parser("push", help="the daily push: see who is due, or queue an extra push")
    push.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    what = push.add_mutually_exclusive_group(required=True)
    what.add_argument("--dry-run", action="store_true", help="list the chats the next tick would push, and their question")
    what.add_argument("--now", metavar="CHAT", help="queue an extra push to CHAT (e.g. telegram:12345) for the running bot")
    content = commands.add_parser("content", help="work on the question bank").add_subparsers(dest="action", required=True)
    check_cmd = content.add_parser("check", help="validate topic files and plans; one line per problem")
    check_cmd.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_CONTENT])
    stats_cmd = content.add_parser("stats", help="questions per topic and difficulty")
    stats_cmd.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_CONTENT])
    import_cmd = content.add_parser("import", help="turn a Markdown question list into a YAML skeleton")
    import_cmd.add_argument("file", type=Path)
    import_cmd.add_argument("--topic", required=True, help="slug of the topic file to write or extend")
    import_cmd.add_argument("--content", type=Path, default=DEFAULT_CONTENT, help="the bank to de-duplicate against")
    grade = commands.add_parser("grade", help="grade an answer (read from stdin) to one question; JSON out")
    grade.add_argument("question", metavar="QUESTION_ID", help="e.g. rag-001, or a follow-up such as rag-001-f1")
    grade.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    health = commands.add_parser("health", help="is a bot alive on this database? JSON out; exit 0 if so, else 1")
    health.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    backup = commands.add_parser("backup", help="copy the live database consistently, while the bot runs")
    backup.add_argument("dest", metavar="DEST", help="a file, or a folder (existing, or ending in /) for a time-stamped copy")
    backup.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    backup.add_argument("--keep", type=_positive, metavar="N", help="DEST is a folder: keep only the newest N copies")
    export = commands.add_parser("export", help="a learner's history, or the bank itself, as CSV, JSON or an Anki deck")
    export.add_argument("--format", required=True, choices=("csv", "json", "apkg"), dest="fmt")
    export.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write it ('-': standard output)")
    export.add_argument("--user", metavar="USER_KEY", help="whose history (e.g. telegram:12345; the console's is "
                        "console:local); apkg: their weak questions. Without it: the bank itself")
    export.add_argument("--topic", metavar="SLUG", help="only this topic; apkg: the whole topic's deck")
    export.add_argument("--config", type=Path, help="TOML settings file (default: ./config.toml if present)")
    args = parser.parse_args(argv)

    if args.command == "run":
        return _run(args.config)
    if args.command == "push":
        return _push(args.config, args.now)
    if args.command == "grade":
        return _grade(args.question, args.config)
    if args.command == "health":
        return _health(args.config)
    if args.command == "backup":
        return _backup(args.config, args.dest, args.keep)
    if args.command == "export":
        return _export(args.config, args.fmt, args.out, args.user, args.topic)
    if args.action == "check":
        return _check(args.paths)
    if args.action == "stats":
        return _stats(args.paths)
    return _import(args.file, args.topic, args.content)


def _check(paths: list[Path]) -> int:
    bank, problems = check(paths)
    for line in problems:
        print(line)
    count = sum(len(t.questions) for t in bank.topics.values())
    print(f"{len(problems)} problem(s) in {len(bank.topics)} topic(s), {count} question(s), {len(bank.plans)} plan(s)",
          file=sys.stderr)
    return 1 if problems else 0


def _stats(paths: list[Path]) -> int:
    """Per topic: questions by difficulty, answers written, follow-ups, key points with terms, and
    questions citing a source beyond the five seed documents."""
    bank, problems = check(paths, strict=False)
    columns = ("questions", "basic", "inter.", "adv.", "answered", "w/ follow", "follow-ups", "points", "w/ terms",
               "cited")
    print(f"{'topic':<26}" + "".join(f"{c:>11}" for c in columns))
    totals = [0] * len(columns)
    for slug, topic in bank.topics.items():
        qs = topic.questions
        points = [p for q in qs for x in (q, *q.follow_ups) for p in x.key_points]
        row = [len(qs), *(sum(q.difficulty == d for q in qs) for d in (1, 2, 3)), sum(bool(q.answer) for q in qs),
               sum(bool(q.follow_ups) for q in qs), sum(len(q.follow_ups) for q in qs), len(points),
               sum(bool(p.terms) for p in points), sum(any(not s.startswith("seed ") for s in q.source) for q in qs)]
        totals = [a + b for a, b in zip(totals, row)]
        print(f"{slug:<26}" + "".join(f"{v:>11}" for v in row))
    print(f"{'total':<26}" + "".join(f"{v:>11}" for v in totals))
    print("(w/ follow: questions with follow-ups; points: key points of questions and follow-ups; "
          "cited: questions citing a paper, documentation or collection beyond the seeds)")
    if problems:
        print(f"({len(problems)} problem(s): run `quizbot content check`)", file=sys.stderr)
    return 0


def _import(file: Path, slug: str, content_dir: Path) -> int:
    from bot.content import SLUG
    from bot.importer import import_questions, write_topic
    import re
    if not re.fullmatch(SLUG, slug):
        print(f"quizbot: --topic '{slug}' is not a slug (lowercase letters, digits and dashes)", file=sys.stderr)
        return 2
    try:
        markdown = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"quizbot: cannot read {file}: {e}", file=sys.stderr)
        return 2
    bank, _ = check([content_dir], strict=False)
    existing = [q.q for q in bank.questions.values()]
    result = import_questions(markdown, file.name, slug, existing, set(bank.questions))
    target = content_dir / f"{slug}.yaml"
    if result.added:
        write_topic(target, slug, result.added)
    print(f"added {len(result.added)} question(s) to {target}"
          + (f" ({result.added[0]['id']} … {result.added[-1]['id']})" if result.added else ""))
    print(f"skipped {len(result.duplicates)} already in the bank, {len(result.not_questions)} line(s) that are not questions")
    for text in result.not_questions:
        print(f"  not a question: {text}")
    if result.added:
        print(f"next: write the answers and key points, then run `quizbot content check {content_dir}`")
    return 0


def _grade(question_id: str, config: Path | None) -> int:
    """`quizbot grade ID < answer.txt`: which key points the answer covers, as one JSON object."""
    import json
    settings = _settings(config)
    if settings is None:
        return 2
    from bot.content import load_bank
    from quizbot.app import build_grader
    try:
        question = load_bank(settings.bot.content_dir).by_id.get(question_id)
    except ContentError as e:
        _bank_problems(e, first_only=True)
        return 2
    if question is None:
        print(f"quizbot: no question {question_id!r} in the bank", file=sys.stderr)
        return 1
    answer = sys.stdin.buffer.read().decode("utf-8", "replace").strip()
    if not answer:
        print("quizbot: the answer (on standard input) is empty", file=sys.stderr)
        return 1
    verdict = asyncio.run(build_grader(settings, None).best(question, answer, settings.bot.lang))
    result = {"question": question.id, "covered": list(verdict.covered),
              "missed": verdict.missed(len(question.key_points)), "suggested": verdict.suggested,
              "grader": verdict.grader}
    if verdict.grader == "llm":
        result["feedback"] = verdict.feedback
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _bank_problems(error: ContentError, first_only: bool = False) -> None:
    problems = error.problems[0] if first_only else "\n" + "\n".join(error.problems)
    print(f"quizbot: the question bank has problems (run `quizbot content check`): {problems}", file=sys.stderr)


def _settings(config: Path | None):
    if config is None and Path("config.toml").exists():
        config = Path("config.toml")
    try:
        return load_settings(config)
    except ConfigError as e:
        print(f"quizbot: bad configuration:\n{e}", file=sys.stderr)
        return None


def _push(config: Path | None, chat: str | None) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    from quizbot.app import build_delivery, build_engine

    async def work() -> int:
        engine = await build_engine(settings)
        try:
            delivery = build_delivery(settings, engine, [])
            if chat:
                if not await delivery.request_push(chat):
                    print(f"quizbot: no chat {chat} in {settings.storage.path}", file=sys.stderr)
                    return 1
                print(f"queued a push to {chat}: the running bot sends it within a minute")
                return 0
            due = await delivery.due_now()
            for entry in due:
                question = await engine.preview_daily(entry["chat"])
                late = "  (too late: will be skipped)" if entry["late"] else ""
                print(f"{entry['chat']}\tdue {entry['due']} ({entry['local']}){late}\t"
                      f"{question.id + ' ' + question.q if question else '-'}")
            print(f"{len(due)} chat(s) due now", file=sys.stderr)
            return 0
        finally:
            await engine.store.close()

    try:
        return asyncio.run(work())
    except (ContentError, StorageUnavailable) as e:
        print(f"quizbot: {e}", file=sys.stderr)
        return 3


def _run(config: Path | None) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    from bot.logging_setup import configure_logging
    try:
        configure_logging(settings)
    except ConfigError as e:
        print(f"quizbot: {e}", file=sys.stderr)
        return 2
    from bot.loop import run as run_loop
    from quizbot.app import run
    try:
        run_loop(run(settings))  # on uvloop when installed
    except ContentError as e:
        _bank_problems(e)
        return 2
    except ConfigError as e:
        print(f"quizbot: {e}", file=sys.stderr)
        return 2
    except NewerSchema as e:
        print(f"quizbot: cannot use the database: {e}", file=sys.stderr)
        return 3
    except StorageUnavailable as e:
        print(f"quizbot: cannot use the database: {e}\n"
              "Check that the file and its folder are writable and that no other program holds a lock on it, "
              "or set [storage] path in the config.", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        pass
    return 0


def _health(config: Path | None) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    from bot.health import health_command
    return health_command(settings.storage.path)


def _backup(config: Path | None, dest: str, keep: int | None) -> int:
    settings = _settings(config)
    if settings is None:
        return 2
    from bot.backup import BackupError, backup
    try:
        done = backup(settings.storage.path, dest, keep)
    except BackupError as e:
        print(f"quizbot: {e}", file=sys.stderr)
        return 3
    print(f"backed up {settings.storage.path} to {done.path} ({done.bytes:,} bytes, schema {done.schema_version}, "
          f"integrity ok)" + (f"; removed {len(done.removed)} older copy(ies)" if done.removed else ""))
    return 0


def _export(config: Path | None, fmt: str, out: Path, user: str | None, topic: str | None) -> int:
    """`quizbot export`: the bytes come from bot/export.py, the same as the /export command's."""
    from datetime import datetime, timezone
    from bot import export
    from bot.content import load_bank
    from bot.i18n import t
    settings = _settings(config)
    if settings is None:
        return 2
    try:
        bank = load_bank(settings.bot.content_dir)
    except ContentError as e:
        _bank_problems(e, first_only=True)
        return 2
    if topic is not None and topic not in bank.topics:
        print(f"quizbot: no topic {topic!r} in the bank; the topics are: {', '.join(bank.topics)}", file=sys.stderr)
        return 1
    now, lang = datetime.now(timezone.utc), settings.bot.lang

    def deck(ids: list[str], key: str, name: str) -> bytes:
        return export.anki_package(bank, ids, key, f"quizbot::{name}", t("export_points_title", lang), now,
                                   t("export_deck_description", lang))
    if user is None:  # the bank itself
        if fmt == "apkg":
            name = bank.topics[topic].name(lang) if topic else "bank"
            data = deck(export.topic_question_ids(bank, topic), f"topic:{topic}" if topic else "bank", name)
        else:
            data = export.bank_csv(bank, topic) if fmt == "csv" else export.bank_json(bank, now, topic)
    else:
        database = Path(settings.storage.path)
        if not database.is_file():
            print(f"quizbot: no database at {database} (set [storage] path, or pass --config)", file=sys.stderr)
            return 3

        async def read() -> export.Learner:
            from bot.storage import Storage
            store = await Storage.open(database)
            try:
                return await export.load_learner(store, user)
            finally:
                await store.close()
        try:
            learner = asyncio.run(read())
        except StorageUnavailable as e:
            print(f"quizbot: cannot use the database: {e}", file=sys.stderr)
            return 3
        if not learner.answers:
            print(f"quizbot: {user} has no answers in {database}", file=sys.stderr)
            return 1
        if fmt == "apkg" and topic:
            data = deck(export.topic_question_ids(bank, topic), f"topic:{topic}", bank.topics[topic].name(lang))
        elif fmt == "apkg":
            weak = export.weak_question_ids(learner, bank)
            if not weak:
                print(f"quizbot: {user} has no weak questions (last rated Again or Hard, or held for less than "
                      f"{export.WEAK_STABILITY_DAYS:g} days); pass --topic SLUG for a topic's deck", file=sys.stderr)
                return 1
            data = deck(weak, "weak", t("export_weak_deck", lang))
        elif fmt == "csv":
            data = export.history_csv(export.history_rows(learner, bank, topic))
        else:
            data = export.history_json(learner, bank, now, topic)
    try:
        if str(out) == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            out.write_bytes(data)
    except OSError as e:
        print(f"quizbot: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 3
    count = f"{export.note_count(data)} note(s)" if fmt == "apkg" else f"{len(data):,} bytes"
    print(f"wrote {count} to {out}", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
