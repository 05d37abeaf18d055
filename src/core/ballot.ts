/**
 * Ballots order proposals. A ballot is a pair (round, leader): rounds grow, and the leader's node
 * index breaks ties so two nodes never use the same ballot. Real ballots have round >= 1; ZERO is
 * below every real ballot and is the promise of a fresh acceptor.
 */
export interface Ballot {
  readonly round: number
  readonly leader: number
}

export const ZERO: Ballot = { round: 0, leader: 0 }

export const compare = (a: Ballot, b: Ballot): number => a.round - b.round || a.leader - b.leader
export const eq = (a: Ballot, b: Ballot): boolean => a.round === b.round && a.leader === b.leader
export const gt = (a: Ballot, b: Ballot): boolean => compare(a, b) > 0
export const gte = (a: Ballot, b: Ballot): boolean => compare(a, b) >= 0
export const lt = (a: Ballot, b: Ballot): boolean => compare(a, b) < 0
export const max = (a: Ballot, b: Ballot): Ballot => (gte(a, b) ? a : b)

/** The smallest ballot of node `leader` that is above every ballot seen so far. */
export const above = (seen: Ballot, leader: number): Ballot => ({ round: seen.round + 1, leader })

export const show = (b: Ballot): string => `${b.round}.${b.leader}`
