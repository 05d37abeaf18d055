(ns jepsen.paxos.members-test
  "Tests of the membership nemesis's pure part. It needs no Jepsen: besides
  `lein test`, plain Clojure runs it from jepsen/:

      clojure -cp src:test -e \"(require 'jepsen.paxos.members-test)
        (clojure.test/run-tests 'jepsen.paxos.members-test)\""
  (:require [clojure.test :refer [deftest is testing]]
            [jepsen.paxos.members :as members]))

(def address->node
  {"10.0.0.1:5000" "10.0.0.1"
   "10.0.0.2:5000" "10.0.0.2"
   "10.0.0.3:5000" "10.0.0.3"
   "10.0.0.4:5000" "10.0.0.4"
   "10.0.0.5:5000" "10.0.0.5"})

(defn member
  "One entry of member list's \"members\", as data.json reads it."
  [id node voter?]
  {:id id, :address (str node ":5000"), :voter voter?, :leader false})

(def listed
  "What `paxos member list -o json` prints for four members, one a learner,
  read with keyword keys."
  {:epoch   7
   :leader  "10.0.0.2:5000"
   :members [(member 0 "10.0.0.1" true)
             (member 1 "10.0.0.2" true)
             (member 2 "10.0.0.3" true)
             (member 5 "10.0.0.5" false)]})

(deftest view-test
  (let [v (members/view address->node listed)]
    (is (= 7 (:epoch v)))
    (is (= "10.0.0.2" (:leader v)))
    (is (= #{"10.0.0.1" "10.0.0.2" "10.0.0.3" "10.0.0.5"} (:members v)))
    (is (= #{"10.0.0.1" "10.0.0.2" "10.0.0.3"} (:voters v)))
    (is (= 4 (:size v)))
    (is (= 3 (:voter-count v)))
    (is (= [] (:others v))))
  (testing "no leader"
    (is (nil? (:leader (members/view address->node
                                     (assoc listed :leader nil))))))
  (testing "a member that is no test node is counted, and named"
    (let [v (members/view address->node
                          (update listed :members conj
                                  (member 9 "10.9.9.9" true)))]
      (is (= 5 (:size v)))
      (is (= 4 (:voter-count v)))
      (is (= ["10.9.9.9:5000"] (:others v)))
      (is (not (contains? (:members v) nil)))))
  (testing "anything else is no view"
    (is (nil? (members/view address->node nil)))
    (is (nil? (members/view address->node "[]")))
    (is (nil? (members/view address->node (dissoc listed :epoch))))
    (is (nil? (members/view address->node (assoc listed :members nil))))
    (is (nil? (members/view address->node
                            (assoc listed :members [{:address "10.0.0.1:5000"}]))))))

(deftest newest-test
  (is (nil? (members/newest [])))
  (is (nil? (members/newest [nil nil])))
  (is (= {:epoch 9} (members/newest [{:epoch 3} nil {:epoch 9} {:epoch 8}]))))

(deftest addable-test
  (let [nodes ["10.0.0.1" "10.0.0.2" "10.0.0.3" "10.0.0.4" "10.0.0.5"]]
    (is (= ["10.0.0.4"]
           (members/addable nodes #{"10.0.0.1" "10.0.0.2" "10.0.0.3" "10.0.0.5"} 4)))
    (is (= [] (members/addable nodes (set nodes) 5)))
    (testing "never past max-members, counting members that are no test node"
      (is (= [] (members/addable nodes #{"10.0.0.1"} members/max-members))))))

(defn view-of
  "A view with these voters and learners."
  [voters learners]
  {:members     (into (sorted-set) (concat voters learners))
   :voters      (into (sorted-set) voters)
   :size        (+ (count voters) (count learners))
   :voter-count (count voters)})

(deftest removable-test
  (testing "never below three members"
    (is (= [] (members/removable (view-of ["a" "b" "c"] []))))
    (is (= [] (members/removable (view-of ["a" "b"] ["c"])))))
  (testing "any of four voters"
    (is (= ["a" "b" "c" "d"] (members/removable (view-of ["a" "b" "c" "d"] [])))))
  (testing "with three voters, only a learner"
    (is (= ["d"] (members/removable (view-of ["a" "b" "c"] ["d"])))))
  (testing "with two voters, only learners, and only down to three members"
    (is (= ["c" "d"] (members/removable (view-of ["a" "b"] ["c" "d"]))))))

(deftest outcome-test
  (is (= :done (members/outcome 0)))
  (is (= :done (members/outcome (int 0))) "sshj reports exit codes as Integers")
  (is (= :refused (members/outcome 1)))
  (is (= :usage (members/outcome 2)))
  (is (= :unknown (members/outcome 3)))
  (is (= :unknown (members/outcome 124)) "stopped by coreutils' timeout")
  (is (= :unknown (members/outcome nil))))
