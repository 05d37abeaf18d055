(ns jepsen.paxos.linear
  "The Knossos workload: the same operations as jepsen.paxos.append, checked
  for linearizability against an exact model of the list.

  Knossos's search grows quickly with concurrency and with indeterminate
  (:info) operations, so keep these runs short (tens of seconds, a modest
  rate); the append workload scales to long runs."
  (:require [jepsen.checker :as checker]
            [jepsen.paxos [append :as append]
                          [client :as pc]]
            [knossos.model :as model])
  (:import (knossos.model Model)))

(defn step-micro-op
  "Applies one micro-op of a transaction to the list xs. Returns the new list,
  or a knossos inconsistent state when a read disagrees with xs. A nil read
  is an unknown result (from an op that did not complete) and matches any
  list."
  [xs [f k v :as mop]]
  (when-not (= pc/the-key k)
    (throw (IllegalArgumentException.
             (str "the list model has only key " pc/the-key ": " (pr-str mop)))))
  (case f
    :append (conj xs v)
    :r      (if (or (nil? v) (= v xs))
              xs
              (model/inconsistent
                (str "read " (pr-str v) " but the list is " (pr-str xs))))))

(defrecord ListModel [xs]
  Model
  (step [this op]
    (when-not (= :txn (:f op))
      (throw (IllegalArgumentException.
               (str "the list model only knows :txn ops: " (pr-str op)))))
    (let [xs' (reduce (fn [xs mop]
                        (let [xs' (step-micro-op xs mop)]
                          (if (model/inconsistent? xs')
                            (reduced xs')
                            xs')))
                      xs
                      (:value op))]
      (if (model/inconsistent? xs')
        xs'
        (ListModel. xs'))))

  Object
  (toString [this]
    (pr-str xs)))

(defn list-model
  "The model of the replicated list, starting empty. The initial state is the
  real value [], not nil: Knossos accepts a read of nil in any state, so a nil
  start would let a history that reads nothing hide lost appends."
  []
  (ListModel. []))

(def algorithms
  "Knossos search algorithms, for --algorithm. :competition (Knossos's
  recommendation) runs :linear and :wgl in parallel and takes whichever
  finishes first, at the cost of the memory of both."
  #{:competition :linear :wgl})

(defn checker
  "Knossos's linearizability checker over the list model, with the given
  search algorithm (one of `algorithms`)."
  [algorithm]
  (checker/linearizable {:model     (list-model)
                         :algorithm algorithm}))

(defn workload
  "The Knossos workload: the append workload's client and generators, with the
  linearizability checker. Reads :algorithm from the options (default
  :competition)."
  [opts]
  (assoc (append/workload opts)
         :checker (checker (:algorithm opts :competition))))
