"""Bulk seeding of a benchmark database: models, versions, usage, ledgers, users, votes.

The rows bypass the services on purpose: registering 100,000 models one at a time (fees,
locks, audit events) would take far longer than the benchmark. They obey every database
constraint and keep the invariants the services keep (an account's balance equals the sum
of its ledger, a proposal's tallies equal its counted votes), which tests/benchmarks_app
checks on a small seed. No audit events are written.

Who is who in a seeded database:
  bench-owner-NNN     own the N generated models (random names, 1-4 versions each)
  bench-writer-NNNN   the load's users: an API token each (secret from bench_secret), a
                      funded account, voting power, and one model of their own to register
                      new versions of. The load gives each wrk thread its own writers.
"""

import datetime
import hashlib
import random
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from fees_app.models import Account, FeeSchedule, FeeType, LedgerEntry
from governance_app.models import Proposal, ProposalType, Vote, VotingPowerCheckpoint
from models_app.models import (
    Category,
    ModelName,
    ModelUser,
    Registration,
    Source,
    StatusChange,
    UsageStats,
)
from registry_site.models import ApiToken, Scope
from registry_site.parameters import PARAMETER_SPECS
from registry_site.services import token_digest

Status = Registration.Status

SEED_VERSION = 1
OWNERS = 300
WRITERS = 512
MODERATOR = "bench-moderator"
BATCH = 5000
MB = 1_048_576
START_CREDIT = 10**12
WRITER_POWER = 1000
TOKEN_SCOPES = [Scope.READ, Scope.REGISTER, Scope.USAGE, Scope.VOTE, Scope.PROPOSE]
OPEN_TITLE = "Bench open proposal"


def words(text: str) -> list[str]:
    return text.split()


STATUS_WEIGHTS = {Status.APPROVED: 80, Status.PENDING: 7, Status.DEPRECATED: 6,
                  Status.REJECTED: 4, Status.SUSPENDED: 3}
ADJECTIVES = words(
    "swift tiny large base small mega micro nano deep bright calm rapid lean robust sharp "
    "fast light dense sparse quantized distilled compact open fine wide"
)
FAMILIES = {
    Category.NLP: words("bert roberta gpt t5 electra xlnet deberta llama mistral bart"),
    Category.COMPUTER_VISION: words("resnet vit yolo efficientnet mobilenet convnext detr "
                                    "unet segformer swin"),
    Category.SPEECH: words("whisper wav2vec hubert conformer tacotron ecapa quartznet"),
    Category.RECOMMENDATION: words("two-tower dlrm wide-deep ncf sasrec bert4rec"),
    Category.TIME_SERIES: words("lstm tcn informer nbeats deepar prophet patchtst"),
    Category.GENERATIVE: words("diffusion vae gan stylegan flow musicgen"),
    Category.OTHER: words("xgboost lightgbm catboost forest tabnet gnn"),
}
ARCHITECTURES = {
    Category.NLP: "Transformer encoder", Category.COMPUTER_VISION: "Convolutional network",
    Category.SPEECH: "Encoder-decoder transformer", Category.RECOMMENDATION: "Two-tower",
    Category.TIME_SERIES: "Recurrent network", Category.GENERATIVE: "Diffusion U-Net",
    Category.OTHER: "Gradient-boosted trees",
}
LICENSES = ["Apache-2.0", "MIT", "BSD-3-Clause", "GPL-3.0", "CC-BY-4.0", ""]
TAGS = words(
    "text embeddings english multilingual classification sentiment ner summarization "
    "translation qa chat code image-classification object-detection segmentation faces ocr "
    "imagenet coco edge mobile onnx int8 fp16 asr tts speaker kws audio ranking retrieval ctr "
    "forecasting anomaly sensors finance energy diffusion text-to-image music tabular graph "
    "fraud medical legal retail gaming robotics"
)
# Description words with Zipf-like weights: searched words range from common to rare.
WORDS = words(
    "model trained dataset accuracy fast inference production benchmark fine-tuned "
    "pretrained latency throughput quantized pruned distilled robust multilingual english "
    "german french spanish chinese japanese medical legal financial retail news reviews "
    "tweets images video audio speech sensors logs transactions clicks sessions products "
    "documents contracts invoices receipts radiology pathology satellite drone traffic "
    "weather energy demand churn fraud anomaly ranking retrieval captioning translation "
    "summarization classification detection segmentation tracking forecasting generation "
    "denoising upscaling embeddings similarity clustering tagging parsing tokenizer vocabulary "
    "attention convolution recurrent transformer adapter lora checkpoint export gpu cpu edge "
    "mobile browser server batch streaming realtime offline calibrated explainable fair "
    "private federated synthetic augmented curated licensed open research commercial "
    "experimental stable deprecated baseline state-of-the-art lightweight compact efficient"
)
WORD_WEIGHTS = [1 / (rank + 1) ** 0.8 for rank in range(len(WORDS))]
# Searched words: common, middling and rare ones.
SEARCH_WORDS = [WORDS[i] for i in (0, 1, 3, 5, 8, 12, 20, 30, 45, 60, 80, 100, 110)]


def owner_name(i: int) -> str:
    return f"bench-owner-{i:03d}"


def writer_name(i: int) -> str:
    return f"bench-writer-{i:04d}"


def writer_model(i: int) -> str:
    return f"bench-writer-{i:04d}-model"


def bench_secret(username: str) -> str:
    """The API token secret of a bench user: derived, so a reused database needs no file.

    Only ever stored in a bench database (the command refuses any other), so it being
    derivable from the user name protects nothing and is meant to.
    """
    return "airbench-" + hashlib.sha256(f"ai-registry-bench:{username}".encode()).hexdigest()[:40]


class Progress:
    """A one-line progress bar on a terminal; a line per tenth elsewhere."""

    def __init__(self, out, total: int, label: str, width: int = 30):
        self.out, self.total, self.label, self.width = out, max(total, 1), label, width
        self.tty = getattr(out, "isatty", lambda: False)()
        self.shown_tenth = -1

    def update(self, done: int) -> None:
        share = min(done / self.total, 1.0)
        if self.tty:
            filled = int(share * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.out.write(f"\r{self.label} [{bar}] {share:4.0%} {done}/{self.total}")
            if done >= self.total:
                self.out.write("\n")
            self.out.flush()
        elif int(share * 10) > self.shown_tenth:
            self.shown_tenth = int(share * 10)
            self.out.write(f"{self.label}: {share:.0%} ({done}/{self.total})\n")


class Seeder:
    def __init__(self, models: int, *, out=None, seed: int = 9):
        self.models = models
        self.out = out or sys.stdout
        self.rng = random.Random(seed)
        self.now = timezone.now()
        self.schedules = {s.fee_type: s for s in FeeSchedule.objects.active()}
        self.running = {}  # account id -> balance after the entries written so far

    # Users, accounts, tokens, power ---------------------------------------------------------

    def users(self):
        User = get_user_model()
        password = make_password(None)  # nobody logs in as a bench user
        names = ([owner_name(i) for i in range(OWNERS)] + [writer_name(i) for i in range(WRITERS)]
                 + [MODERATOR])
        User.objects.bulk_create([User(username=n, password=password) for n in names],
                                 ignore_conflicts=True)
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        Account.objects.bulk_create([Account(user=u, balance=0) for u in users.values()],
                                    ignore_conflicts=True)
        accounts = dict(Account.objects.filter(user__in=users.values())
                        .values_list("user_id", "id"))
        opened = self.now - datetime.timedelta(days=1200)
        LedgerEntry.objects.bulk_create([
            LedgerEntry(account_id=accounts[u.pk], kind=LedgerEntry.Kind.CREDIT,
                        amount=START_CREDIT, balance_after=START_CREDIT,
                        reason="Benchmark funding", created_at=opened)
            for u in users.values()])
        self.running = dict.fromkeys(accounts.values(), START_CREDIT)
        self.accounts = accounts
        self.owners = [users[owner_name(i)] for i in range(OWNERS)]
        self.writers = [users[writer_name(i)] for i in range(WRITERS)]
        self.moderator = users[MODERATOR]
        expires = self.now + datetime.timedelta(days=3650)
        ApiToken.objects.bulk_create([
            ApiToken(user=u, name="bench", prefix=bench_secret(u.username)[:12],
                     digest=token_digest(bench_secret(u.username)), scopes=TOKEN_SCOPES,
                     expires_at=expires)
            for u in self.writers])
        VotingPowerCheckpoint.objects.bulk_create([
            VotingPowerCheckpoint(user=u, power=WRITER_POWER, effective_from=opened,
                                  reason="Benchmark voter") for u in self.writers])

    # Models ---------------------------------------------------------------------------------

    def registrations(self) -> None:
        progress = Progress(self.out, self.models, "models")
        done = 0
        while done < self.models:
            size = min(BATCH, self.models - done)
            batch = self.make_batch(size, first=done)
            with transaction.atomic():
                self.insert_batch(batch)
            done += size
            progress.update(done)
        # Each writer's own model: one approved version to register new versions after.
        writers = []
        for i, user in enumerate(self.writers):
            writers.append(self.registration(writer_model(i), user, "1.0.0", Category.NLP,
                                             self.now - datetime.timedelta(days=30),
                                             status=Status.APPROVED, first=True))
        with transaction.atomic():
            self.insert_batch(writers)

    def make_batch(self, count: int, first: int) -> list[Registration]:
        """Every version of ``count`` new models, numbered from ``first``."""
        rng = self.rng
        batch = []
        for offset in range(count):
            number = first + offset
            category = rng.choice(Category.values)
            name = (f"{rng.choice(ADJECTIVES)}-{rng.choice(FAMILIES[category])}-"
                    f"{rng.choice(['base', 'small', 'large', 'xl', 'tiny', 'v2', 'lite'])}-"
                    f"{number:06d}")
            owner = rng.choice(self.owners)
            registered = self.now - datetime.timedelta(days=rng.uniform(30, 1100))
            for v in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
                batch.append(self.registration(
                    name, owner, f"{1 + v // 2}.{v % 2}.{rng.randint(0, 9)}", category,
                    registered, first=v == 0))
                registered += datetime.timedelta(days=rng.uniform(1, 60))
        return batch

    def registration(self, name, owner, version, category, when, *, status=None,
                     first=False) -> Registration:
        rng = self.rng
        size_bytes = int(rng.lognormvariate(17, 2)) % (20_000 * MB) + 1024
        description = rng.choices(WORDS, weights=WORD_WEIGHTS, k=rng.randint(12, 40))
        return Registration(
            name=name, version=version, owner=owner,
            hash=hashlib.sha256(f"{name}/{version}".encode()).hexdigest(),
            description=" ".join(description).capitalize() + ".",
            license=rng.choice(LICENSES), source_url=f"https://models.example.org/{name}",
            tags=rng.sample(TAGS, rng.randint(1, 5)), category=category,
            architecture=ARCHITECTURES[category],
            input_shape=[1, rng.choice([128, 256, 512, 1024])],
            output_shape=[1, rng.choice([2, 10, 768, 1000])],
            size_bytes=size_bytes, parameter_count=max(1000, size_bytes // 4),
            status=status or rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0],
            registration_fee=1000 if first else rng.randint(1, 500),
            registered_at=when, updated_at=when,
        )

    def insert_batch(self, batch: list[Registration]) -> None:
        names = {}
        for r in batch:
            names.setdefault(r.name, ModelName(name=r.name, owner=r.owner,
                                               created_at=r.registered_at))
        ModelName.objects.bulk_create(names.values())
        Registration.objects.bulk_create(batch)
        usage, users, changes, entries = [], [], [], []
        seen = set()
        for r in batch:
            usage.append(self.usage_for(r, users))
            changes.extend(self.history_for(r))
            entries.append(self.fee_for(r, first=r.name not in seen))
            seen.add(r.name)
        UsageStats.objects.bulk_create(usage)
        ModelUser.objects.bulk_create(users)
        StatusChange.objects.bulk_create(changes)
        LedgerEntry.objects.bulk_create(entries)

    def fee_for(self, registration, *, first: bool) -> LedgerEntry:
        fee_type = FeeType.REGISTRATION if first else FeeType.UPDATE
        account = self.accounts[registration.owner.pk]
        self.running[account] -= registration.registration_fee
        return LedgerEntry(
            account_id=account, kind=LedgerEntry.Kind.DEBIT,
            amount=registration.registration_fee, balance_after=self.running[account],
            fee_type=fee_type, schedule=self.schedules[fee_type],
            units=registration.size_bytes, model_name=registration.name,
            model_version=registration.version, created_at=registration.registered_at,
        )

    def usage_for(self, registration, users) -> UsageStats:
        rng = self.rng
        if registration.status == Status.PENDING or rng.random() < 0.4:
            return UsageStats(registration=registration)
        total = int(rng.lognormvariate(4, 2)) + 1
        failed = int(total * rng.uniform(0, 0.1))
        callers = rng.sample(self.owners, min(total, rng.randint(1, 5)))
        users.extend(ModelUser(registration=registration, user=u,
                               first_used_at=registration.registered_at) for u in callers)
        return UsageStats(
            registration=registration, total_executions=total,
            successful_executions=total - failed, failed_executions=failed,
            total_fees_collected=total * 10, total_duration_us=total * rng.randint(500, 900_000),
            unique_users=len(callers),
            last_execution=registration.registered_at + datetime.timedelta(days=10),
        )

    def history_for(self, registration) -> list[StatusChange]:
        """The status changes that lead to the generated status, as the services record them."""
        rng = self.rng
        when = registration.registered_at
        owner = registration.owner
        moves = [("", Status.PENDING, owner, Source.API, "Registered")]
        final = registration.status
        if final == Status.REJECTED:
            moves.append((Status.PENDING, Status.REJECTED, self.moderator, Source.ADMIN,
                          "Missing license and model card."))
        elif final != Status.PENDING:
            moves.append((Status.PENDING, Status.APPROVED, self.moderator, Source.ADMIN,
                          "Checked."))
            if final == Status.SUSPENDED:
                moves.append((Status.APPROVED, Status.SUSPENDED, self.moderator, Source.ADMIN,
                               "Reported outputs under review."))
            elif final == Status.DEPRECATED:
                moves.append((Status.APPROVED, Status.DEPRECATED, owner, Source.API,
                              "Superseded by a newer version."))
        changes = []
        for from_status, to_status, actor, source, reason in moves:
            changes.append(StatusChange(
                registration=registration, from_status=from_status, to_status=to_status,
                actor=actor, source=source, reason=reason, created_at=when))
            when += datetime.timedelta(hours=rng.uniform(1, 72))
        return changes

    # Governance -----------------------------------------------------------------------------

    def closed_proposals(self) -> None:
        """Past proposals with votes, so the proposal pages and lists hold history."""
        rng = self.rng
        count = max(20, self.models // 200)
        total = WRITER_POWER * len(self.writers)
        parameter = next(iter(PARAMETER_SPECS.values()))
        proposals = []
        for i in range(count):
            created = self.now - datetime.timedelta(days=rng.uniform(30, 900))
            proposals.append(Proposal(
                type=ProposalType.PARAMETER_CHANGE, title=f"Bench past proposal {i}",
                payload={"parameter": parameter.name, "value": parameter.minimum,
                         "reason": "Benchmark history"},
                proposer=rng.choice(self.writers), created_at=created,
                voting_ends_at=created + datetime.timedelta(days=7),
                execution_deadline=created + datetime.timedelta(days=14),
                total_power_at_snapshot=total, quorum=max(1, total // 10)))
        Proposal.objects.bulk_create(proposals)
        votes = []
        for proposal in proposals:
            for voter in rng.sample(self.writers, rng.randint(5, 40)):
                choice = rng.choices(list(Vote.Choice), [6, 3, 1])[0]
                votes.append(Vote(proposal=proposal, voter=voter, choice=choice,
                                  weight=WRITER_POWER, counted=True,
                                  created_at=proposal.created_at + datetime.timedelta(hours=1)))
                field = {"for": "votes_for", "against": "votes_against",
                         "abstain": "votes_abstain"}[choice]
                setattr(proposal, field, getattr(proposal, field) + WRITER_POWER)
        Vote.objects.bulk_create(votes, batch_size=BATCH)
        Proposal.objects.bulk_update(proposals, ["votes_for", "votes_against", "votes_abstain"],
                                     batch_size=BATCH)

    def finish(self) -> None:
        """Balances from the ledgers, then fresh planner statistics."""
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE fees_app_account AS a SET balance = s.balance FROM ("
                " SELECT account_id, SUM(CASE WHEN kind = 'credit' THEN amount ELSE -amount END)"
                " AS balance FROM fees_app_ledgerentry GROUP BY account_id) AS s"
                " WHERE a.id = s.account_id")
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")

    def run(self) -> None:
        with transaction.atomic():
            self.users()
        self.registrations()
        with transaction.atomic():
            self.closed_proposals()
        self.finish()


def ensure_open_proposals(count: int, *, now=None) -> int:
    """At least ``count`` proposals open for votes that no bench writer has voted on yet.

    Each benchmark run votes on fresh pairs only (a repeated vote answers 409); creating the
    missing proposals here, not at seed time, keeps a reused database good for any run.
    """
    now = now or timezone.now()
    fresh = (Proposal.objects.filter(title__startswith=OPEN_TITLE, canceled_at__isnull=True,
                                     voting_ends_at__gt=now + datetime.timedelta(hours=6))
             .filter(votes__isnull=True))
    have = fresh.count()
    missing = max(0, count - have)
    if missing:
        writers = list(get_user_model().objects.filter(username__startswith="bench-writer-")
                       .order_by("username")[:WRITERS])
        total = WRITER_POWER * len(writers)
        parameter = next(iter(PARAMETER_SPECS.values()))
        Proposal.objects.bulk_create([
            Proposal(type=ProposalType.PARAMETER_CHANGE, title=f"{OPEN_TITLE} {i}",
                     payload={"parameter": parameter.name, "value": parameter.minimum,
                              "reason": "Benchmark vote"},
                     proposer=writers[i % len(writers)],
                     created_at=now - datetime.timedelta(minutes=1),
                     voting_ends_at=now + datetime.timedelta(days=2),
                     execution_deadline=now + datetime.timedelta(days=4),
                     total_power_at_snapshot=total, quorum=total)
            for i in range(missing)], batch_size=BATCH)
    return have + missing


def check_invariants() -> list[str]:
    """What is wrong with the seeded data: balances against ledgers, tallies against votes."""
    problems = []
    for account in Account.objects.annotate(
            credits=Sum("entries__amount", filter=Q(entries__kind="credit")),
            debits=Sum("entries__amount", filter=Q(entries__kind="debit"))):
        expected = (account.credits or 0) - (account.debits or 0)
        if account.balance != expected:
            problems.append(f"account {account.pk}: balance {account.balance}, ledger {expected}")
    for proposal in Proposal.objects.all():
        for choice, field in (("for", "votes_for"), ("against", "votes_against"),
                              ("abstain", "votes_abstain")):
            counted = (Vote.objects.filter(proposal=proposal, choice=choice, counted=True)
                       .aggregate(total=Sum("weight"))["total"] or 0)
            if getattr(proposal, field) != counted:
                problems.append(f"proposal {proposal.pk} {field}: {getattr(proposal, field)}, "
                                f"votes {counted}")
    return problems

