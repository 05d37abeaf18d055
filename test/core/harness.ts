/**
 * Drives pure core nodes by hand for unit tests: step inputs into a node, collect what it sends,
 * and deliver chosen messages. Writes are applied to a map standing in for the disk.
 */
import { defaultConfig, type NodeConfig } from "../../src/core/config.ts"
import type { Message } from "../../src/core/messages.ts"
import { stepBatch } from "../../src/core/program.ts"
import { emptyDurable, restore, type Input, type NodeState, type Output } from "../../src/core/state.ts"

export interface Sent {
  readonly from: number
  readonly to: number
  readonly msg: Message
  readonly early: boolean
}

export class Bench {
  nodes: NodeState[]
  outputs: Output[][]
  constructor(n: number, overrides: Partial<NodeConfig> = {}) {
    this.nodes = Array.from({ length: n }, (_, id) => restore(defaultConfig(id, n, overrides), emptyDurable, 1000 + id))
    this.outputs = this.nodes.map(() => [])
  }

  /** Steps `input` into node `id` as a batch of one (so a Flush follows) and returns its output. */
  step(id: number, input: Input): Output {
    return this.batch(id, [input])
  }

  /** Steps the inputs into node `id` as one batch, as the server and the simulator do. */
  batch(id: number, inputs: readonly Input[]): Output {
    const r = stepBatch(this.nodes[id] as NodeState, inputs)
    this.nodes[id] = r.state
    ;(this.outputs[id] as Output[]).push(r.output)
    return r.output
  }

  receive(to: number, from: number, msg: Message): Output {
    return this.step(to, { _tag: "Receive", from, msg })
  }

  /** Ticks node `id` until it sends a message of `tag`, at most `max` ticks. */
  tickUntil(id: number, tag: Message["_tag"], max = 1000): Sent[] {
    for (let i = 0; i < max; i++) {
      const out = this.step(id, { _tag: "Tick" })
      const sent = sentOf(id, out).filter((m) => m.msg._tag === tag)
      if (sent.length > 0) return sent
    }
    throw new Error(`node ${id} sent no ${tag} in ${max} ticks`)
  }
}

export function sentOf(from: number, out: Output): Sent[] {
  return [
    ...out.early.map((e) => ({ from, to: e.to, msg: e.msg, early: true })),
    ...out.send.map((e) => ({ from, to: e.to, msg: e.msg, early: false }))
  ]
}

export function only<T extends Message["_tag"]>(sent: readonly Sent[], tag: T, to?: number): Extract<Message, { _tag: T }> {
  const m = sent.find((s) => s.msg._tag === tag && (to === undefined || s.to === to))
  if (m === undefined) throw new Error(`no ${tag}${to === undefined ? "" : ` to ${to}`} in ${sent.map((s) => s.msg._tag).join(",")}`)
  return m.msg as Extract<Message, { _tag: T }>
}
