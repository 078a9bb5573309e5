// The API's shapes the screens read (see /api/openapi.json).
export type FieldType = "string" | "integer" | "number" | "boolean" | "url" | "json" | "file";

export interface FieldSpec {
  name: string;
  type: FieldType;
  required: boolean;
  allowed_values?: unknown[] | null;
  min_length?: number | null;
  max_length?: number | null;
  min_value?: number | null;
  max_value?: number | null;
  pattern?: string | null;
}

export type AssignmentStatus = "ACTIVE" | "SUBMITTED" | "ACCEPTED" | "REJECTED" | "SKIPPED" | "EXPIRED";

export interface Assignment {
  assignment_id: string;
  task_id: string;
  pool_id: string;
  project_id: string;
  worker_id: string;
  status: AssignmentStatus;
  input: Record<string, unknown>;
  answers?: Record<string, unknown> | null;
  comment?: string | null;
  proof?: string | null;
  review_comment?: string | null;
  taken_at: string;
  deadline_at: string;
  submitted_at?: string | null;
  finished_at?: string | null;
  /** taken by staff trying a sandbox pool */
  sandbox?: boolean;
}

export interface TakeResult extends Assignment {
  pool_name: string;
  instructions: string;
  output_spec: FieldSpec[];
}

export interface Page<T> { items: T[]; total: number }

export interface CurrencyBalance { currency: string; available_minor: number; on_hold_minor: number; paid_minor: number }

export interface Payout {
  payout_id: string; worker_id: string; amount_minor: number; currency: string; comment: string;
  status: "pending" | "approved" | "rejected"; requested_at: string; decided_at?: string | null;
  decided_by?: string | null; decision_comment?: string | null;
  destination_method?: "card" | "bank_account" | "phone" | "wallet" | null;
  destination_details?: string | null; destination_masked?: boolean;
}

export interface HistoryEntry {
  entry_id: number; transfer_id: string;
  kind: "assignment" | "bonus" | "payout_hold" | "payout_paid" | "payout_release";
  account: "available" | "on_hold" | "paid"; amount_minor: number; currency: string;
  assignment_id?: string | null; bonus_id?: string | null; payout_id?: string | null;
  pool_id?: string | null; at: string;
}

export interface Submission {
  assignment_id: string; task_id: string; pool_id: string; project_id: string; worker_id: string;
  answers: Record<string, unknown>; comment?: string | null; proof?: string | null;
  taken_at: string; submitted_at: string; review_mode: "manual" | "auto";
  auto_accept_at?: string | null; is_control: boolean; control_correct?: boolean | null;
  status: "pending" | "accepted" | "rejected"; lock_holder?: string | null; lock_until?: string | null;
  decided_by?: string | null; decided_at?: string | null; review_comment?: string | null;
  sandbox?: boolean;
}

export interface PoolView {
  pool_id: string; project_id: string; name: string; overlap: number; assignment_timeout_s: number;
  auto_accept_after_s: number | null; review_mode: "manual" | "auto";
  captcha_frequency: "none" | "low" | "high"; priority: number; expected_seconds_per_task?: number | null;
  status: "draft" | "open" | "closed" | "archived"; created_at: string; updated_at: string;
  price_minor?: number | null; currency?: string | null; sandbox?: boolean;
}

export interface Project {
  project_id: string; name: string; instructions: string; input_spec: FieldSpec[];
  output_spec: FieldSpec[]; created_at: string; updated_at: string; sandbox?: boolean;
}

export type TicketStatus = "open" | "answered" | "closed";

export interface Ticket {
  ticket_id: string; user_id: string; kind: string; subject: string; text: string; status: TicketStatus;
  assignment_id?: string | null; pool_id?: string | null; assigned_to?: string | null; created_at: string;
  updated_at?: string | null; first_answered_at?: string | null; closed_at?: string | null;
}

export interface TicketMessage {
  message_id: string; ticket_id: string; author_id: string; author_role: string; from_staff: boolean;
  text: string; created_at: string;
}

export interface TicketThread { ticket: Ticket; messages: TicketMessage[] }

export type ThreadKind = "assignment" | "pool";

export interface ChatMessage {
  message_id: string; kind: ThreadKind; ref: string; author_id: string; author_role: string; text: string;
  deleted: boolean; created_at: string;
}

export interface ChatMessages {
  kind: ThreadKind; ref: string; worker_id: string | null; items: ChatMessage[]; muted_until: string | null;
}

export interface ChatThreads {
  threads: { kind: ThreadKind; ref: string; worker_id: string | null; pool_id: string | null; last_at: string | null; messages: number }[];
  pools: string[];
}

export interface UserRow {
  user_id: string; login: string; role: "worker" | "manager" | "admin"; must_change_password: boolean;
  mfa_enabled: boolean; disabled: boolean; created_at: string;
}
