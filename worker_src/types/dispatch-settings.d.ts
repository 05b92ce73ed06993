// Type of the settings module rendered for the dispatch and outbound Workers (tools/dispatch.mjs, the platform stack).
declare module '*/settings.js' {
	export const SETTINGS: {
		contract: any;
		plans: Record<string, import('../src/dispatch/limits.js').LimitSpec>;
		script_prefix: string;
	};
}
