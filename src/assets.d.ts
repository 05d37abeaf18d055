/** Files imported as text with `import x from "./file.sh" with { type: "text" }` (Bun bundles them). */
declare module "*.sh" {
  const text: string
  export default text
}
