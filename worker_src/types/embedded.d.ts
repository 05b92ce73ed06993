// Type of the module Python renders at deploy (src/embedded.js.j2); it never exists in src/, so type checking needs this.
declare module '*/embedded.js' {
	export const EMBEDDED: import('../src/context.js').Embedded;
}
