/**
 * The fault matrix's contract: every scenario runs real processes (relays,
 * nodes, redis-server, s3rver) on loopback, injects one fault, and ends with
 * the same counts, so `pnpm faults` prints one comparable table.
 */

/** What a scenario measured. `lost` and `duplicated` must be 0 and every owed evidence received. */
export interface ScenarioResult {
  /** Envelopes a sender tried to submit. */
  readonly sent: number;
  /** Envelopes whose SubmissionAcceptance reached the sender. */
  readonly accepted: number;
  /** Accepted envelopes delivered to every recipient (counted once per envelope and recipient). */
  readonly delivered: number;
  /** Deliveries beyond the first of the same envelope to the same recipient. */
  readonly duplicated: number;
  /** Accepted envelopes some recipient never received (nor was a NonDelivery owed for). */
  readonly lost: number;
  /** Evidences (Delivery, NonDelivery, Acceptance) a sender is owed. */
  readonly evidencesOwed: number;
  /** Of those, how many the sender received. */
  readonly evidencesReceived: number;
  /** Scenario-specific figures (RSS, seconds to recover, what a setting loses ...). */
  readonly measured?: Readonly<Record<string, number | string | boolean>>;
  /** Plain sentences for the report: what happened and what it means for an operator. */
  readonly notes?: readonly string[];
}

export interface ScenarioContext {
  /** Short form (CI): smaller loads and sizes, same faults. */
  readonly quick: boolean;
  /** A fresh temporary folder for this scenario's processes; removed by the runner. */
  readonly dir: string;
  /** Progress lines go to stderr, never to the JSON on stdout. */
  readonly log: (message: string) => void;
  /** Aborted when the scenario's time budget is spent: stop processes and throw. */
  readonly signal: AbortSignal;
}

export interface Scenario {
  /** Stable key in `--json` output, e.g. `relay-sigkill`. */
  readonly name: string;
  /** One line for the human table. */
  readonly title: string;
  /** Time budget in seconds for the quick and the full form. */
  readonly budgetSeconds: { readonly quick: number; readonly full: number };
  /** Skip with a reason (e.g. redis-server missing) instead of failing. */
  skip?(): string | undefined;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}

/** A scenario passes when nothing accepted was lost or duplicated and every owed evidence arrived. */
export function scenarioPassed(result: ScenarioResult): boolean {
  return (
    result.lost === 0 && result.duplicated === 0 && result.evidencesReceived >= result.evidencesOwed
  );
}
