// Types of scripts/gen-rules-index.mjs, for the test that imports it.
export interface IndexRule {
  code: string;
  name: string;
  severity: string;
  title: string;
}
export interface RuleRegistries {
  audit: readonly IndexRule[];
  explain: readonly IndexRule[];
  verify: readonly IndexRule[];
  policy: readonly IndexRule[];
}
export declare const GROUPS: ReadonlyArray<{ key: keyof RuleRegistries; title: string; command: string; about: string; text: string }>;
export declare function renderRulesIndex(rules: RuleRegistries): string;
export declare function loadBuiltRules(root: string): Promise<RuleRegistries>;
