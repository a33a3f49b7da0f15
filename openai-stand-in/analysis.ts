/**
 * Deterministic session analysis used by the OpenAI stand-in in place of a model.
 *
 * Input is a chat transcript, one message per line: `[DD.MM.YYYY HH:MM:SS] User: text` (the
 * timestamp is optional, the role is User, Assistant or System in any case). A line without a
 * role prefix belongs to no one: it counts for the whole-text rules but never as a user line.
 *
 * Rules (keywords match case-insensitively at the start of a word, so "shift" also matches
 * "shifts" but "happy" does not match "unhappy"; multi-word keywords match as a phrase):
 * - language: each word of the whole transcript that is in one language's stop-word list below
 *   is a vote for that language (en, nl, de, es, fr; the lists are disjoint). Most votes wins,
 *   ties go to the earlier language in that order, no votes means "en".
 * - sentiment (user lines): NEGATIVE if any negative keyword occurs (angry, terrible, unhappy,
 *   not working, frustrat*, ...), else POSITIVE if any positive keyword occurs (thank*, great,
 *   perfect, happy, ...), else NEUTRAL. Negative wins over positive.
 * - escalated (whole transcript, any speaker, as the assistant usually announces hand-offs):
 *   escalat*, manager*, supervisor*.
 * - forwarded_hr (whole transcript): the word "HR" in upper case, or "human resources".
 * - category (user lines): the first rule in CATEGORY_RULES, in order, with a matching keyword;
 *   specific rules come before generic ones (sick before leave, contract before hours, team
 *   last). No match means UNRECOGNIZED_OTHER.
 * - questions: the text of user lines that ends with "?", in transcript order, at most 5.
 * - summary: `The user asked about "<first question, else first user line>".` plus a sentence
 *   for escalation and HR hand-off, clipped to 300 characters. Without user lines:
 *   "The conversation contained no user messages."
 * When the transcript has no user lines at all, the user-line rules read the whole text instead.
 */

import {
  ANALYSIS_JSON_SCHEMA,
  SENTIMENTS as ANALYSIS_SENTIMENTS,
  SESSION_CATEGORIES,
} from "../domain/analysis.ts";

export const LANGUAGES = ["en", "nl", "de", "es", "fr"] as const;
export type Language = (typeof LANGUAGES)[number];

// The stand-in answers LiveDash's own prompt, so it speaks the same enums.
export const SENTIMENTS = ANALYSIS_SENTIMENTS;
export type Sentiment = (typeof SENTIMENTS)[number];

export const CATEGORIES = SESSION_CATEGORIES;
export type Category = (typeof CATEGORIES)[number];

export interface Analysis {
  language: string;
  sentiment: Sentiment;
  escalated: boolean;
  forwarded_hr: boolean;
  category: Category;
  questions: string[];
  summary: string;
}

/** The keys every answer has, in the order they are serialised: the schema's required list. */
export const ANALYSIS_KEYS = ANALYSIS_JSON_SCHEMA.required satisfies readonly (keyof Analysis)[];

export const MAX_QUESTIONS = 5;
export const SUMMARY_MIN_LENGTH = 10;
export const SUMMARY_MAX_LENGTH = 300;

const STOP_WORDS: Record<Language, readonly string[]> = {
  en: ["the", "and", "is", "my", "i", "you", "what", "how", "can", "please", "with", "this"],
  nl: ["het", "een", "ik", "niet", "van", "mijn", "wat", "hoe", "kan", "graag", "bedankt", "zijn"],
  de: ["der", "die", "das", "und", "ich", "nicht", "ist", "mein", "wie", "kann", "bitte", "danke"],
  es: ["el", "los", "las", "y", "mi", "una", "como", "por", "para", "gracias", "hola", "pero"],
  fr: ["le", "les", "et", "je", "est", "pas", "mon", "comment", "pour", "merci", "bonjour", "vous"],
};

const NEGATIVE_KEYWORDS = [
  "angry",
  "terrible",
  "unhappy",
  "not working",
  "frustrat",
  "annoy",
  "disappoint",
  "awful",
  "horrible",
  "useless",
];
const POSITIVE_KEYWORDS = ["thank", "great", "perfect", "happy", "excellent", "awesome", "helpful"];
const ESCALATION_KEYWORDS = ["escalat", "manager", "supervisor"];

type CategoryRule = readonly [Category, readonly string[]];

/** Checked in order; the first rule with a matching keyword decides the category. */
export const CATEGORY_RULES: readonly CategoryRule[] = [
  ["SICK_LEAVE_RECOVERY", ["sick", "illness", "recover"]],
  ["LEAVE_VACATION", ["vacation", "holiday", "leave days", "day off", "days off", "time off"]],
  ["OFFBOARDING", ["resign", "last day", "notice period", "offboarding"]],
  ["ONBOARDING", ["onboarding", "first day", "new hire"]],
  ["SALARY_COMPENSATION", ["salary", "pay", "paid", "payroll", "overtime", "wage", "bonus"]],
  ["CONTRACT_HOURS", ["contract"]],
  ["SCHEDULE_HOURS", ["shift", "schedule", "roster", "hours"]],
  ["WORKWEAR_STAFF_PASS", ["workwear", "uniform", "staff pass", "badge"]],
  ["ACCESS_LOGIN", ["password", "log in", "login", "sign in", "account"]],
  ["PERSONAL_QUESTIONS", ["personal details", "home address", "bank details"]],
  ["SOCIAL_QUESTIONS", ["party", "social", "drinks", "team outing"]],
  ["TEAM_CONTACTS", ["colleague", "team", "contact"]],
];

const ROLE_LINE = /^(?:\[[^\]]*\]\s*)?(user|assistant|system)\s*:\s?(.*)$/i;

interface TranscriptLine {
  role: "user" | "assistant" | "system" | null;
  text: string;
}

export function analyseTranscript(transcript: string): Analysis {
  const lines = splitLines(transcript);
  const wholeText = lines.map((line) => line.text).join("\n");
  const userLines = lines.filter((line) => line.role === "user").map((line) => line.text);
  const userText = userLines.length > 0 ? userLines.join("\n") : wholeText;
  const questions = userLines.filter((text) => text.endsWith("?")).slice(0, MAX_QUESTIONS);
  const escalated = containsKeyword(wholeText, ESCALATION_KEYWORDS);
  const forwardedHr = /\bHR\b/.test(wholeText) || /\bhuman resources\b/i.test(wholeText);
  return {
    language: detectLanguage(wholeText),
    sentiment: detectSentiment(userText),
    escalated,
    forwarded_hr: forwardedHr,
    category: detectCategory(userText),
    questions,
    summary: summarise(questions[0] ?? userLines[0], escalated, forwardedHr),
  };
}

function splitLines(transcript: string): TranscriptLine[] {
  const lines: TranscriptLine[] = [];
  for (const raw of transcript.split(/\r\n|\n|\r/)) {
    const line = raw.trim();
    if (line === "") continue;
    const match = ROLE_LINE.exec(line);
    const role = match?.[1]?.toLowerCase() as TranscriptLine["role"] | undefined;
    lines.push(
      match ? { role: role ?? null, text: (match[2] ?? "").trim() } : { role: null, text: line },
    );
  }
  return lines;
}

function detectLanguage(text: string): Language {
  const votes = new Map<Language, number>();
  for (const word of text.toLowerCase().split(/[^\p{L}]+/u)) {
    const language = LANGUAGES.find((candidate) => STOP_WORDS[candidate].includes(word));
    if (language) votes.set(language, (votes.get(language) ?? 0) + 1);
  }
  let best: Language = "en";
  let bestVotes = 0;
  for (const language of LANGUAGES) {
    const count = votes.get(language) ?? 0;
    if (count > bestVotes) {
      best = language;
      bestVotes = count;
    }
  }
  return best;
}

function detectSentiment(text: string): Sentiment {
  if (containsKeyword(text, NEGATIVE_KEYWORDS)) return "NEGATIVE";
  if (containsKeyword(text, POSITIVE_KEYWORDS)) return "POSITIVE";
  return "NEUTRAL";
}

function detectCategory(text: string): Category {
  const rule = CATEGORY_RULES.find(([, keywords]) => containsKeyword(text, keywords));
  return rule ? rule[0] : "UNRECOGNIZED_OTHER";
}

function summarise(subject: string | undefined, escalated: boolean, forwardedHr: boolean): string {
  if (subject === undefined || subject === "") {
    return "The conversation contained no user messages.";
  }
  const sentences = [`The user asked about "${subject}".`];
  if (escalated) sentences.push("The conversation was escalated.");
  if (forwardedHr) sentences.push("The question was forwarded to HR.");
  return clip(sentences.join(" "), SUMMARY_MAX_LENGTH);
}

function clip(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 3).trimEnd()}...`;
}

/** True when a keyword starts a word in the text (phrases match with any single space). */
function containsKeyword(text: string, keywords: readonly string[]): boolean {
  const lower = text.toLowerCase();
  return keywords.some((keyword) => keywordPattern(keyword).test(lower));
}

const patternCache = new Map<string, RegExp>();

function keywordPattern(keyword: string): RegExp {
  let pattern = patternCache.get(keyword);
  if (!pattern) {
    const escaped = keyword.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/ /g, "\\s+");
    pattern = new RegExp(`(?<![\\p{L}\\p{N}])${escaped}`, "u");
    patternCache.set(keyword, pattern);
  }
  return pattern;
}
