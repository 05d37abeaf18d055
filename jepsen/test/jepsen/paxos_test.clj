(ns jepsen.paxos-test
  "Unit tests of the pure parts of the Jepsen test: outcome classification,
  fault parsing, the Knossos list model and the node layout. No nodes needed:
  `lein test`."
  (:require [clojure.test :refer [deftest is testing]]
            [jepsen.paxos.client :as pc]
            [jepsen.paxos.db :as db]
            [jepsen.paxos.linear :as linear]
            [jepsen.paxos.nemesis :as nemesis]
            [knossos.model :as model])
  (:import (java.io IOException)
           (java.net ConnectException)
           (org.httpkit.client TimeoutException)))

(deftest outcome-test
  (testing "definite failures"
    (is (= :fail (pc/outcome {:error (ConnectException. "Connection refused")})))
    (is (= :fail (pc/outcome {:error (TimeoutException. "connect timeout: 10ms")})))
    (is (= :fail (pc/outcome {:status 503, :body nil})))
    (is (= :fail (pc/outcome {:status 400, :body {:error "BadRequest"}})))
    (is (= :fail (pc/outcome {:status 504, :body {:definite true}}))))
  (testing "unknown outcomes"
    (is (= :info (pc/outcome {:error (TimeoutException. "idle timeout: 10ms")})))
    (is (= :info (pc/outcome {:error (IOException. "Connection reset by peer")})))
    (is (= :info (pc/outcome {:error :no-response-in-time})))
    (is (= :info (pc/outcome {:status 504, :body nil})))
    (is (= :info (pc/outcome {:status 500, :body nil})))
    (is (= :info (pc/outcome {:status 503, :body {:definite false}}))))
  (is (= :ok (pc/outcome {:status 200, :body {:list []}}))))

(deftest ops-test
  (is (= {:f :txn, :value [[:append 0 5] [:r 0 nil]]} (pc/append-op 5)))
  (is (= {:f :txn, :value [[:r 0 nil]]} pc/read-op)))

(deftest parse-faults-test
  (is (= [:partition :kill] (nemesis/parse-faults "partition,kill")))
  (is (= [:partition :kill :pause] (nemesis/parse-faults "all")))
  (is (= [] (nemesis/parse-faults "none")))
  (is (= [:pause :kill] (nemesis/parse-faults "pause, kill,pause"))))

(defn run-model
  "Steps the model through ops; returns the final model or the first
  inconsistency."
  [m ops]
  (reduce (fn [m op]
            (let [m' (model/step m op)]
              (if (model/inconsistent? m') (reduced m') m')))
          m
          ops))

(deftest list-model-test
  (let [m (linear/list-model)]
    (testing "appends return the list right after them; reads see it"
      (is (= (linear/->ListModel [1 2])
             (run-model m [{:f :txn, :value [[:append 0 1] [:r 0 [1]]]}
                           {:f :txn, :value [[:r 0 [1]]]}
                           {:f :txn, :value [[:append 0 2] [:r 0 nil]]}
                           {:f :txn, :value [[:r 0 [1 2]]]}])))
      (is (= m (run-model m [{:f :txn, :value [[:r 0 []]]}]))))
    (testing "the initial state is [], not unknown"
      (is (model/inconsistent?
            (run-model m [{:f :txn, :value [[:r 0 [1]]]}]))))
    (testing "an append's list must end with it, after what came before"
      (is (model/inconsistent?
            (run-model m [{:f :txn, :value [[:append 0 1] [:r 0 [2 1]]]}]))))))

(deftest layout-test
  (is (= "/opt/paxos/10.77.0.11/bin/paxos" (db/binary "10.77.0.11")))
  (is (= "/opt/paxos/10.77.0.11/paxos.pid" (db/pidfile "10.77.0.11")))
  (is (thrown? IllegalArgumentException (db/node-dir "../etc")))
  (is (thrown? IllegalArgumentException (db/node-dir "")))
  (is (= "# Written by the Jepsen test: the nodes of this run.\n10.77.0.11:5000\n10.77.0.12:5000\n"
         (db/config-text {:nodes ["10.77.0.11" "10.77.0.12"]}))))
