"""The only code that writes: ordering, guards, settle, verify, journal, converge.

`apply_plan` takes a reviewed plan and, org by org (concurrently; one org's
failure does not stop the others):

1. re-reads live state and refuses a stale plan (its live fingerprint changed);
2. checks the guards (`guards.check_guards`) before any write;
3. writes in an order where every intermediate state is safe: MCP domains added
   first; then the allowlist steps of `write_order` (created disabled, widened,
   enabled, disabled, narrowed, deleted, each step chosen so no `mustAllow`
   address is shut out on the way); then MCP domains removed; MCP toggles last;
4. re-reads each object before every write to it and stops if it is not what this
   run expects (the plan's `before`, or what the run's last write made it); re-reads
   by name just before each create;
5. waits for each asynchronous policy write to settle (`failed` is an error);
6. journals every write (an intent before, an outcome after), then re-reads and
   re-plans: a non-empty plan, or two allowlists of one name, is "did not converge".

A write whose answer leaves open whether it happened is never resent blindly: a
re-read decides (`_OrgRun._write`). An org's run holds its lease (`org_lease`, one
per user, target and org, whatever the journal) from the first read to the last, so a
second apply on the org refuses to start.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import httpx

from rovo_reconcile.api.client import AdminClient, Json
from rovo_reconcile.api.errors import (
    AmbiguousWrite,
    ApiConflict,
    ApiError,
    ApiMalformed,
    ApiNotFound,
    ApiUnavailable,
)
from rovo_reconcile.api.live import (
    Endpoints,
    LiveOrg,
    allowlist_from_policy,
    domain_pattern,
    read_org,
)
from rovo_reconcile.api.shapes import (
    CreatedPolicy,
    IpAllowlistAnswer,
    IpAllowlistItem,
    McpDomainItem,
    McpSettingsAnswer,
    PolicyItem,
    parse,
)
from rovo_reconcile.errors import EXIT_ERROR, EXIT_GUARD, EXIT_OK, RovoError
from rovo_reconcile.explain import explain_stale
from rovo_reconcile.journal import Journal, JournalEntry, Verdict
from rovo_reconcile.lease import (
    LEASE_DIR_ENV,
    LeaseHeld,
    LeaseUnavailable,
    lease_dir,
    org_lease,
)
from rovo_reconcile.mcp_state import McpMode, McpState
from rovo_reconcile.plan import (
    Change,
    OrgPlan,
    Plan,
    Refusal,
    Unmanaged,
    allowlist_value,
    fingerprint,
    make_plan,
    policy_from_state,
    state_value,
)
from rovo_reconcile.policy.model import SETTING_API_TOKEN, SETTING_SUPPORTED_DOMAINS, setting_key
from rovo_reconcile.progress import OnOrgDone, OrgDone
from rovo_reconcile.reconcile import apply_refusals
from rovo_reconcile.targets import Target, open_client
from rovo_reconcile.write_order import NoSafeOrder, Step, allowlist_steps, same_value

__all__ = [
    "LEASE_DIR_ENV",
    "ApplyResult",
    "Journal",
    "JournalEntry",
    "LeaseHeld",
    "LeaseUnavailable",
    "OrgResult",
    "Outcome",
    "apply_plan",
    "lease_dir",
    "org_lease",
    "result_without_writes",
    "run_apply",
]

Status = Literal["applied", "failed", "skipped"]
_SETTLING = frozenset({"applying", "removing"})


@dataclass(frozen=True)
class Outcome:
    change: Change
    status: Status
    detail: str | None = None


@dataclass
class OrgResult:
    org_id: str
    file: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    exit_code: int = EXIT_OK
    message: str | None = None
    """Why the org was refused or failed, in one sentence."""
    org_name: str | None = None
    """The policy's `org.name`, shown beside the id."""
    refusals: list[Refusal] = field(default_factory=list)
    new_plan: OrgPlan | None = None
    """For a stale plan: the plan against today's live state."""
    live_changes: tuple[str, ...] = ()
    """For a stale plan: how live now differs from live as the plan saw it."""
    converged: bool | None = None
    """Whether the re-read after the writes found live as the policy says, in every part
    the API reaches (None when apply did not get that far or had nothing to write)."""
    notes: tuple[str, ...] = ()
    """The plan's notes: apply does not act on those."""
    mcp: McpState | None = None
    """The plan's MCP state: manual steps pending mean the org is not converged, whatever
    the API-managed part says (`fully_converged`)."""
    manages_allowlists: bool = True
    """The policy has an `ipAllowlists` section."""
    allowlists_converged: bool | None = None
    """The re-read after the writes found the IP allowlists as the policy says."""
    unmanaged: tuple[Unmanaged, ...] = ()
    """The plan's live entries of additive lists that the policy does not list (left alone)."""

    @classmethod
    def of(
        cls, plan: OrgPlan, *, exit_code: int = EXIT_OK, message: str | None = None
    ) -> OrgResult:
        """The result of an org, starting from what its plan says (notes, MCP state, ...)."""
        return cls(
            plan.org_id,
            plan.file,
            notes=plan.notes,
            org_name=plan.org_name,
            mcp=plan.mcp,
            manages_allowlists=_manages_allowlists(plan),
            unmanaged=plan.unmanaged,
            exit_code=exit_code,
            message=message,
        )

    @property
    def manual_steps(self) -> tuple[str, ...]:
        return self.mcp.manual_steps if self.mcp is not None and self.mcp.pending else ()

    @property
    def ip_allowlists_converged(self) -> bool | None:
        """The IP allowlists match the policy: after the writes, or, when the plan had
        nothing to write, as planned. None when the policy does not manage them or apply
        could not tell (it stopped first)."""
        if not self.manages_allowlists:
            return None
        if self.allowlists_converged is not None:
            return self.allowlists_converged
        if self.exit_code == EXIT_OK and not self.outcomes and self.message is None:
            return True
        return None

    @property
    def fully_converged(self) -> bool | None:
        """`converged`, but never true while manual MCP steps are pending."""
        return False if self.manual_steps else self.converged


@dataclass
class ApplyResult:
    target: str
    orgs: list[OrgResult]
    writes: int = 0

    @property
    def exit_code(self) -> int:
        """The worst org: an error (a partial apply) outranks a refusal, which outranks success."""
        codes = {org.exit_code for org in self.orgs}
        for code in (EXIT_ERROR, EXIT_GUARD):
            if code in codes:
                return code
        return EXIT_OK


def _to_tell(org: OrgPlan) -> bool:
    """Something the admin must hear about an org even when nothing is written to it."""
    return bool(org.notes or org.manual_steps or org.unmanaged)


def result_without_writes(plan: Plan) -> ApplyResult:
    """The report of an apply that had nothing to send: the orgs that failed to read, and notes."""
    return ApplyResult(
        plan.target,
        [
            OrgResult.of(
                org,
                exit_code=EXIT_ERROR if org.error is not None else EXIT_OK,
                message=org.error,
            )
            for org in plan.orgs
            if org.error is not None or _to_tell(org)
        ],
    )


def _manages_allowlists(plan: OrgPlan) -> bool:
    return plan.desired is None or "ipAllowlists" in plan.desired


RECHECK_AFTER = 60.0
"""Seconds a write that got no answer (a timeout, a lost connection, a 504) must stay
absent before it is sent again: a slow origin may commit it after the client gave up.
`run_apply` uses the request deadline (`--timeout`)."""
RECHECK_AFTER_RATE_LIMITED = 1.0
"""After a 429 the server names its own wait (Retry-After); without one, a second. A
storm of 429s thus gives up after the retry policy's attempts, not minutes later."""
RECHECK_AFTER_ANSWER = 5.0
"""The same after an answer that leaves the outcome open (a 5xx, unreadable),
or the server's Retry-After when longer."""


class _Stop(Exception):
    """Stop this org's run: the message says why, the exit code how bad."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def apply_plan(
    client: AdminClient,
    api_url: str,
    plan: Plan,
    *,
    force: bool,
    journal: Journal,
    settle_timeout: float = 300.0,
    recheck_after: float = RECHECK_AFTER,
    on_done: OnOrgDone | None = None,
    window: int | None = None,
) -> ApplyResult:
    """Apply every org of `plan` that has changes; orgs run concurrently, at most `window`
    at a time when given (each holds its live state while it writes).

    `recheck_after` is how long a write that got no answer must stay absent before it
    is sent again (the request deadline, `--timeout`). `on_done` hears of each org as
    its run ends (for progress on stderr).
    """
    runs = [
        _OrgRun(
            client,
            Endpoints(api_url, org.org_id),
            org,
            force,
            journal,
            settle_timeout,
            recheck_after,
        )
        for org in plan.orgs
        if org.changes or org.error
    ]
    slots = asyncio.Semaphore(max(1, window or len(runs)))

    async def bounded(run: _OrgRun) -> OrgResult:
        async with slots:
            return await _reported(run, len(runs), on_done)

    results = await asyncio.gather(*(bounded(run) for run in runs))
    untouched = [  # nothing to write, but something the admin must hear, such as steps by hand
        OrgResult.of(org) for org in plan.orgs if not (org.changes or org.error) and _to_tell(org)
    ]
    orgs = sorted([*results, *untouched], key=lambda o: o.org_id)
    return ApplyResult(plan.target, orgs)


_DONE = {EXIT_OK: "applied", EXIT_GUARD: "refused", EXIT_ERROR: "failed"}


async def _reported(run: _OrgRun, total: int, on_done: OnOrgDone | None) -> OrgResult:
    started = run.client.clock.monotonic()
    result = await run.run()
    if on_done is not None:
        seconds = run.client.clock.monotonic() - started
        what = _DONE.get(result.exit_code, "failed")
        on_done(OrgDone(result.org_id, what, seconds, total))
    return result


class _OrgRun:
    def __init__(
        self,
        client: AdminClient,
        urls: Endpoints,
        plan: OrgPlan,
        force: bool,
        journal: Journal,
        settle_timeout: float,
        recheck_after: float,
    ) -> None:
        self.client = client
        self.recheck_after = recheck_after
        self.urls = urls
        self.plan = plan
        self.force = force
        self.journal = journal
        self.settle_timeout = settle_timeout
        self.result = OrgResult.of(plan)
        self.mcp_mode: McpMode = (
            "manual" if plan.mcp is not None and plan.mcp.live == "not-read" else "auto"
        )
        """As the plan read live: under `--mcp manual` the MCP endpoints are never called."""
        self.created: dict[str, str] = {}
        """Ids of the allowlists this run created, by name."""
        self.expected: dict[str, dict[str, Any]] = {}
        """The value this run expects each allowlist it wrote (by name) to have now: what
        its last write made it. A list not written yet is expected as its plan's `before`."""
        self.touched: set[int] = set()
        """Changes (by id) with at least one write that landed."""

    async def run(self) -> OrgResult:
        if self.plan.error is not None:
            self.result.exit_code, self.result.message = EXIT_ERROR, self.plan.error
            return self.result
        try:
            with self.journal.lease(self.plan.org_id):
                live = await read_org(
                    self.client, self.urls.api_url, self.plan.org_id, mcp_mode=self.mcp_mode
                )
                if self._check_fresh(live):
                    self._check_guards(live)
                    await self._write_all(live, self._allowlist_steps(live))
                    await self._converge()
        except LeaseHeld as e:
            self.result.exit_code, self.result.message = EXIT_GUARD, str(e)
        except _Stop as e:
            self.result.exit_code, self.result.message = e.exit_code, str(e)
        except RovoError as e:
            self.result.exit_code, self.result.message = EXIT_ERROR, str(e)
        except Exception as e:  # a bug in one org must not abort the others mid-write
            if os.environ.get("ROVO_RECONCILE_DEBUG"):
                raise
            self.result.exit_code = EXIT_ERROR
            self.result.message = (
                f"internal error ({type(e).__name__}: {e}); this org stopped, the others went on. "
                "This is a bug; set ROVO_RECONCILE_DEBUG=1 to see the traceback and please report it"
            )
        done = {id(o.change) for o in self.result.outcomes}
        self.result.outcomes.extend(  # after the others, which are in the order they were written
            Outcome(c, "failed", _PARTLY) if id(c) in self.touched else Outcome(c, "skipped")
            for c in self.plan.changes
            if id(c) not in done
        )
        return self.result

    # ------------------------------------------------------------------ before any write

    def _check_fresh(self, live: LiveOrg) -> bool:
        """Refuse a stale plan, and a plan whose changes do not follow from its desired state.

        False when there is nothing to write: live already is what the plan leads to (the
        plan was applied before), which is success, so a re-run CI job stays green.
        """
        desired = policy_from_state(
            self.plan.desired or {"org": self.plan.org_id}, self.plan.guards
        )
        ambiguity = live.ambiguity()
        if ambiguity is not None and desired.ip_allowlists is not None:
            raise _Stop(ambiguity, EXIT_ERROR)
        fresh = make_plan(desired, live.state, file=self.plan.file, notes=live.notes)
        if not fresh.changes:
            self.result.outcomes.extend(
                Outcome(c, "skipped", "already in place") for c in self.plan.changes
            )
            self.result.converged = self.result.allowlists_converged = True
            return False
        if fingerprint(state_value(live.state)) != self.plan.live_fingerprint:
            self.result.new_plan = fresh
            self.result.live_changes = tuple(explain_stale(self.plan, live.state))
            raise _Stop(
                "the plan is stale: live state changed since it was made; review the new plan "
                "and apply again",
                EXIT_GUARD,
            )
        if [c.what() for c in fresh.changes] != [c.what() for c in self.plan.changes]:
            raise _Stop(
                "the plan's changes do not follow from its desired state (was the plan file "
                "edited?); make a new plan",
                EXIT_GUARD,
            )
        return True

    def _check_guards(self, live: LiveOrg) -> None:
        refusals = list(apply_refusals(self.plan, live))
        self.result.refusals = refusals
        blocking = [r for r in refusals if not (r.forceable and self.force)]
        if blocking:
            reasons = "; ".join(r.message for r in blocking)
            hint = "" if any(not r.forceable for r in blocking) else " (--force overrides)"
            raise _Stop(f"safety guard: {reasons}{hint}", EXIT_GUARD)

    # ------------------------------------------------------------------ writes, in safe order

    def _allowlist_steps(self, live: LiveOrg) -> list[Step]:
        values = {a.name: allowlist_value(a) for a in live.state.ip_allowlists or ()}
        try:
            return allowlist_steps(
                self.plan.changes, values, self.plan.guards.must_allow, live.kept_apps
            )
        except NoSafeOrder as e:
            raise _Stop(f"safety guard: {e}", EXIT_GUARD) from e

    async def _write_all(self, live: LiveOrg, ordered: list[Step]) -> None:
        def of(resource: str, action: str) -> list[Change]:
            return [c for c in self.plan.changes if c.resource == resource and c.action == action]

        steps: list[tuple[Change, Callable[[], Awaitable[None]]]] = [
            *((c, partial(self._create_domain, c)) for c in of("mcp.domain", "create")),
            *((s.change, partial(self._allowlist_step, s, live)) for s in ordered),
            *((c, partial(self._delete_domain, c, live)) for c in of("mcp.domain", "delete")),
            *((c, partial(self._patch_setting, c)) for c in of("mcp.settings", "update")),
        ]
        last_step = {id(change): index for index, (change, _) in enumerate(steps)}
        for index, (change, step) in enumerate(steps):
            try:
                await step()
            except _Stop as e:
                self.result.outcomes.append(Outcome(change, "skipped", str(e)))
                raise
            except (ApiError, _Failed) as e:
                self.result.outcomes.append(Outcome(change, "failed", str(e)))
                raise _Stop(f"{change.key}: {e}", EXIT_ERROR) from e
            if last_step[id(change)] == index:
                self.result.outcomes.append(Outcome(change, "applied"))

    async def _write(
        self,
        change: Change,
        method: str,
        url: str,
        body: Json | None,
        landed: Callable[[], Awaitable[bool]],
    ) -> _Sent:
        """Send one write, journalled as intent then outcome; the answer's JSON, if any.

        Never resent blindly (DESIGN.md section 5). After an answer that leaves open
        whether the write happened (none, a timeout, 429, 5xx, or one too large to read),
        `landed()` re-reads and decides. "Not landed" is not trusted at once: a slow origin
        may commit the write after the client gave up, so the re-read is repeated after a
        wait (`_recheck_wait`: at least what the server asked, and the request's deadline
        when there was no answer at all), and only a write still absent then is sent again,
        straight after that second re-read. Waits add up to at most the retry policy's
        budget; a wait past it stops the org instead. `landed()` raises `_Stop` when the
        object is neither as before nor as written: someone else changed it.
        """
        retry = self.client.retry
        waited = 0.0
        for attempt in range(1, retry.max_attempts + 1):
            entry = self.journal.intent(
                self.plan.org_id, change.key, method, url.removeprefix(self.urls.api_url)
            )
            try:
                response = await self.client.request(method, url, json_body=body)
            except (AmbiguousWrite, ApiMalformed) as e:
                # From `request`, ApiMalformed is an answer too large to read: like a lost
                # answer, it says nothing of whether the write happened.
                verdict: Verdict = "unknown"
                stopped: str | None = None
                try:
                    if await landed():
                        verdict = "landed"
                    else:
                        wait = self._recheck_wait(e)
                        if waited + wait > retry.budget:
                            verdict = "not landed"
                            stopped = _past_budget(e, wait, waited, retry.budget)
                        else:
                            await self.client.clock.sleep(wait)
                            waited += wait
                            verdict = "landed" if await landed() else "not landed"
                finally:
                    self.journal.outcome(entry, e.status or None, "ambiguous", verdict, stopped)
                if verdict == "landed":
                    self.touched.add(id(change))
                    return _Sent(None, attempt)
                if stopped is not None:
                    raise ApiUnavailable(f"{e}; {stopped}", status=e.status) from e
                if not _may_resend(e):
                    raise ApiError(
                        f"{e}; a re-read {waited:g} s later still found it not landed, but the "
                        "server accepted or refused it in an answer that could not be read, so "
                        "it is not sent again: re-plan",
                        status=e.status,
                    ) from e
                if attempt == retry.max_attempts:
                    raise
                continue
            except ApiError as e:
                self.journal.outcome(entry, e.status or None, "error")
                raise
            self.touched.add(id(change))
            self.journal.outcome(entry, response.status_code, "ok")
            return _Sent(_json_answer(response.content), attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _recheck_wait(self, error: ApiError) -> float:
        """How long "not landed" must hold before a write is sent again: never less than the
        server's Retry-After; with no answer from the origin (a timeout, a lost connection, a
        504) the request's own deadline, as the origin may still be working on it; a few
        seconds after any other answer. Capped by the retry budget, except Retry-After."""
        no_answer = error.status in (0, 504)
        if error.status == 429:  # turned away by a rate limit: only its Retry-After to wait
            grace = RECHECK_AFTER_RATE_LIMITED
        else:
            grace = self.recheck_after if no_answer else RECHECK_AFTER_ANSWER
        grace = min(grace, self.client.retry.budget)
        asked = error.wait if isinstance(error, AmbiguousWrite) else None
        return max(grace, asked or 0.0)

    # MCP domains ---------------------------------------------------------------

    async def _create_domain(self, change: Change) -> None:
        body = {"data": {"type": "rovo-mcp-domain", "attributes": {"pattern": change.after}}}

        async def landed() -> bool:
            return change.after in await self._domain_ids()

        try:
            await self._write(change, "POST", self.urls.mcp_domains, body, landed)
        except ApiConflict:
            if not await landed():
                raise
            # someone added the same domain since the plan: it is there, nothing to send

    async def _delete_domain(self, change: Change, live: LiveOrg) -> None:
        """Delete the domain, and every other live spelling of the same pattern."""
        for domain_id in (
            live.domain_ids[change.before],
            *live.extra_domain_ids.get(change.before, ()),
        ):

            async def landed(domain_id: str = domain_id) -> bool:
                return domain_id not in (await self._domain_ids()).values()

            try:
                await self._write(
                    change, "DELETE", f"{self.urls.mcp_domains}/{domain_id}", None, landed
                )
            except ApiNotFound:
                continue  # already gone

    async def _domain_ids(self) -> dict[str, str]:
        """Live domains by canonical pattern; a malformed answer stops the org (never "gone")."""
        where = f"GET {httpx.URL(self.urls.mcp_domains).path}"
        found = {}
        async for item in self.client.pages("GET", self.urls.mcp_domains):
            domain = parse(McpDomainItem, item, where, "item")
            found[domain_pattern(domain.attributes.pattern)] = domain.id
        return found

    # MCP settings --------------------------------------------------------------

    async def _patch_setting(self, change: Change) -> None:
        if change.key == setting_key(SETTING_SUPPORTED_DOMAINS):
            patch: Json = {"allowAtlassianSupportedDomains": change.after}
        else:
            assert change.key == setting_key(SETTING_API_TOKEN)
            patch = {"authentication": {"apiToken": change.after}}

        async def landed() -> bool:
            now = await self._setting(change)
            if now not in (change.before, change.after):
                raise _Stop(
                    f"{change.key} was changed by someone else (live is now {now}); re-plan",
                    EXIT_GUARD,
                )
            return bool(now == change.after)

        now = await self._setting(change)
        if now != change.before:
            raise _Stop(
                f"{change.key} was changed by someone else (live is now {now}); re-plan", EXIT_GUARD
            )
        await self._write(
            change,
            "PATCH",
            self.urls.mcp_settings,
            {"data": {"type": "rovo-mcp-settings", "attributes": patch}},
            landed,
        )

    async def _setting(self, change: Change) -> object:
        current = await self.client.get_json(self.urls.mcp_settings)
        where = f"GET {httpx.URL(self.urls.mcp_settings).path}"
        attributes = parse(McpSettingsAnswer, current, where).data.attributes
        if change.key == setting_key(SETTING_SUPPORTED_DOMAINS):
            return attributes.allowAtlassianSupportedDomains
        return attributes.authentication.apiToken

    # IP allowlists -------------------------------------------------------------

    def _resources(
        self, apps: Sequence[str], live: LiveOrg, name: str | None
    ) -> list[dict[str, str]]:
        """Every workspace of `apps`, plus what the model cannot express and so leaves alone:
        resources of other types, and the workspaces of an app only partly attached."""
        ids = [w.id for w in live.workspaces if w.app in apps]
        existing = live.allowlists.get(name) if name is not None else None
        if existing is not None:
            ids += [
                r.id for r in existing.resources if r.app is None or r.app in existing.partial_apps
            ]
        return [{"id": i} for i in sorted(set(ids))]

    def _body(self, value: dict[str, Any], enabled: bool, live: LiveOrg) -> Json:
        return {
            "data": {
                "type": "policy",
                "attributes": {
                    "type": "ip-allowlist",
                    "name": value["name"],
                    "status": "enabled" if enabled else "disabled",
                    "rule": {
                        "in": list(value["addresses"]),
                        "allowMobileBypass": value["allowMobileBypass"],
                    },
                    "resources": self._resources(value["apps"], live, value["name"]),
                },
            }
        }

    async def _create_allowlist(self, change: Change, live: LiveOrg) -> None:
        """Created disabled; a later step enables it once it has settled.

        The name is looked up just before the POST: another apply, or a colleague, may
        have created the list since the plan, and a second one would be a duplicate.
        """
        name = change.after["name"]
        if await self._find_policies(name):
            raise _Stop(
                f"{change.key}: an allowlist named {name!r} was created by someone else since "
                "the plan; nothing was sent for it: re-plan",
                EXIT_GUARD,
            )
        value = {**change.after, "enabled": False}

        async def landed() -> bool:
            return bool(await self._find_policies(name))

        sent = await self._write(
            change, "POST", self.urls.policies, self._body(value, False, live), landed
        )
        policy_id = _created_id(sent.answer, f"POST {httpx.URL(self.urls.policies).path}")
        if policy_id is None or sent.attempts > 1:
            # The answer was lost or unreadable (find what landed), or an earlier send's
            # was (it may have landed late, beside this one): the name must be there once.
            found = await self._find_policies(name)
            if len(found) != 1:
                raise _Stop(
                    f"{change.key}: {len(found)} allowlists named {name!r} after creating it "
                    f"(sent {sent.attempts} time(s); a send whose answer was lost may have "
                    "landed late, or someone else created one); nothing more was written "
                    "to it: keep one and delete the others in Atlassian Administration",
                    EXIT_ERROR,
                )
            policy_id = policy_id or found[0].get("id")
        self.created[name] = str(policy_id)
        self.expected[name] = value
        await self._settle(str(policy_id))

    async def _find_policies(self, name: str) -> list[Json]:
        """Every live ip-allowlist policy named `name` (more than one is a duplicate).

        Checked like the plan's reads: a malformed listing stops the org rather than
        reading as "not there", which would send a duplicate create.
        """
        where = f"GET {httpx.URL(self.urls.policies).path}"
        found = []
        async for item in self.client.pages(
            "GET", self.urls.policies, params={"type": "ip-allowlist"}
        ):
            if parse(PolicyItem, item, where, "item").attributes.type != "ip-allowlist":
                continue
            if parse(IpAllowlistItem, item, where, "item").attributes.name == name:
                found.append(item)
        return found

    def _policy_id(self, name: str, live: LiveOrg) -> str:
        return self.created[name] if name in self.created else live.allowlists[name].id

    async def _read_value(self, url: str, live: LiveOrg) -> dict[str, Any] | None:
        """The allowlist at `url` as compared with plan values; None when it is gone."""
        try:
            current = await self.client.get_json(url)
        except ApiNotFound:
            return None
        where = f"GET {httpx.URL(url).path}"
        model, _ = allowlist_from_policy(current.get("data"), live.workspaces, [], where, "data")
        return allowlist_value(model)

    async def _check_unchanged(self, change: Change, live: LiveOrg) -> None:
        """Re-read the allowlist just before a write; a value other than the one this run
        expects (the plan's `before`, or what its last write made it) stops the org."""
        name = change.before["name"] if change.before is not None else change.after["name"]
        expected = self.expected.get(name, change.before)
        url = f"{self.urls.policies}/{self._policy_id(name, live)}"
        now = await self._read_value(url, live)
        if now is None:
            raise _Stop(f"{change.key} was deleted by someone else; re-plan", EXIT_GUARD)
        if not same_value(now, expected):
            raise _Stop(
                f"{change.key} was changed by someone else since "
                f"{'the plan' if name not in self.expected else 'this run wrote it'}: "
                f"{_difference(expected, now)}; nothing more was written to it: re-plan",
                EXIT_GUARD,
            )

    async def _put(
        self, change: Change, live: LiveOrg, value: dict[str, Any], enabled: bool
    ) -> None:
        name = value["name"]
        url = f"{self.urls.policies}/{self._policy_id(name, live)}"
        before = self.expected.get(name, change.before)

        async def landed() -> bool:
            now = await self._read_value(url, live)
            if now is not None and same_value(now, value):
                return True
            if now is not None and same_value(now, before):
                return False
            raise _Stop(
                f"{change.key} was changed by someone else while this run wrote it; re-plan",
                EXIT_GUARD,
            )

        await self._write(change, "PUT", url, self._body(value, enabled, live), landed)
        self.expected[name] = value
        await self._settle(self._policy_id(name, live))

    async def _allowlist_step(self, step: Step, live: LiveOrg) -> None:
        """One write of `write_order`; the list is re-read before every write but its create."""
        change = step.change
        if step.kind != "create":
            await self._check_unchanged(change, live)
        if step.kind == "create":
            await self._create_allowlist(change, live)
        elif step.kind == "delete":
            await self._delete_allowlist(change, live)
        else:
            assert step.value is not None
            await self._put(change, live, step.value, step.value["enabled"])

    async def _delete_allowlist(self, change: Change, live: LiveOrg) -> None:
        url = f"{self.urls.policies}/{live.allowlists[change.before['name']].id}"

        async def landed() -> bool:
            now = await self._read_value(url, live)
            if now is None:
                return True
            if same_value(now, self.expected.get(change.before["name"], change.before)):
                return False
            raise _Stop(
                f"{change.key} was changed by someone else while this run deleted it; re-plan",
                EXIT_GUARD,
            )

        try:
            await self._write(change, "DELETE", url, None, landed)
        except ApiNotFound:
            return

    async def _settle(self, policy_id: str) -> None:
        """Poll until no resource is applying or removing; `failed` is an error."""
        url = f"{self.urls.policies}/{policy_id}"
        waited, delay = 0.0, 0.2
        while True:
            policy = parse(
                IpAllowlistAnswer, await self.client.get_json(url), f"GET {httpx.URL(url).path}"
            )
            statuses = {str(r.applicationStatus) for r in policy.data.attributes.resources}
            if "failed" in statuses:
                raise _Failed(
                    f"Atlassian reports applicationStatus 'failed' for policy {policy_id}"
                )
            if not statuses & _SETTLING:
                return
            if waited >= self.settle_timeout:
                raise _Failed(
                    f"policy {policy_id} was still applying after {self.settle_timeout:.0f} s"
                )
            await self.client.clock.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)

    # ------------------------------------------------------------------ after the writes

    async def _converge(self) -> None:
        live = await read_org(
            self.client, self.urls.api_url, self.plan.org_id, mcp_mode=self.mcp_mode
        )
        desired = policy_from_state(
            self.plan.desired or {"org": self.plan.org_id}, self.plan.guards
        )
        remaining = make_plan(desired, live.state).changes
        duplicates = live.duplicate_names if desired.ip_allowlists is not None else ()
        self.result.converged = not remaining and not duplicates
        self.result.allowlists_converged = not duplicates and not any(
            c.resource == "ip_allowlist" for c in remaining
        )
        if duplicates:
            names = ", ".join(repr(n) for n in duplicates)
            raise _Stop(
                f"did not converge: after the writes more than one live allowlist is named "
                f"{names} (another apply or a colleague created one at the same time); "
                "delete the extra one in Atlassian Administration",
                EXIT_ERROR,
            )
        if remaining:
            keys = ", ".join(c.key for c in remaining)
            raise _Stop(
                f"did not converge: after the writes live still differs in {keys}", EXIT_ERROR
            )


def _json_answer(content: bytes) -> Json | None:
    """A write's answer as JSON; None when it is empty or not a JSON object."""
    try:
        data = json.loads(content) if content else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _difference(expected: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """How an allowlist's live value differs from the expected one, in a few words."""
    parts = []
    for key in sorted(set(expected) | set(now)):
        was, is_ = expected.get(key), now.get(key)
        if isinstance(was, list) and isinstance(is_, list):
            added = [str(x) for x in is_ if x not in was]
            removed = [str(x) for x in was if x not in is_]
            if added or removed:
                parts.append(
                    f"{key} " + ", ".join([*(f"+{a}" for a in added), *(f"-{r}" for r in removed)])
                )
        elif was != is_:
            parts.append(f"{key} {was} -> {is_}")
    return "; ".join(parts) or "its value differs"


def _created_id(answer: Json | None, where: str) -> str | None:
    """The new policy's id from a create's answer; None when there is no readable one."""
    try:
        return parse(CreatedPolicy, answer, where).data.id
    except ApiMalformed:
        return None


@dataclass(frozen=True)
class _Sent:
    """A write that happened: its answer's JSON (None when lost or unreadable) and how many
    times it was sent."""

    answer: Json | None
    attempts: int


def _may_resend(error: ApiError) -> bool:
    """Whether a write found not landed may go again: only after no answer, 429 or 5xx. An
    unreadable 2xx or 4xx was an answer, and resending might duplicate what it accepted."""
    return error.status == 0 or error.status == 429 or error.status >= 500


def _past_budget(error: ApiError, wait: float, waited: float, budget: float) -> str:
    """Why a write found not landed is not sent again: the wait would pass the budget."""
    asked = error.wait if isinstance(error, AmbiguousWrite) else None
    why = (
        f"the server asked to wait {asked:g} s (Retry-After) before anything is sent again"
        if asked is not None and asked >= wait
        else f"confirming it did not land needs another {wait:g} s"
    )
    spent = f", {waited:g} s of it already spent" if waited else ""
    return (
        f"a re-read found it not landed, and {why}, past the {budget:g} s this write may "
        f"wait in all (the retry budget{spent}); it was not sent again and this org stopped: "
        "apply again later (re-plan first: it may still land)"
    )


_PARTLY = "partly applied: the run stopped before this change's remaining writes (see the journal)"


class _Failed(Exception):
    """A write that Atlassian accepted and then could not apply."""


async def run_apply(
    target: Target,
    plan: Plan,
    *,
    force: bool,
    journal: Journal,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
) -> ApplyResult:
    """Open a write-capable client on `target` and apply `plan`; counts the writes sent."""
    async with open_client(target, read_only=False, concurrency=concurrency) as (client, counter):
        result = await apply_plan(
            client,
            target.api_url,
            plan,
            force=force,
            journal=journal,
            recheck_after=target.timeout,
            on_done=on_done,
            # An org's run mostly waits (settling, re-reads), not holding a request slot:
            # four orgs a slot keep the slots busy and bound the live states held at once.
            window=4 * concurrency,
        )
        result.writes = counter.writes
        return result
