(defproject jepsen.paxos "0.1.0-SNAPSHOT"
  :description "Jepsen test for the Multi-Paxos replicated log (the `paxos`
               binary): Elle list-append and Knossos checks under partitions,
               crashes and pauses."
  :dependencies [; Released Jepsen; brings Clojure 1.12.5, Elle 0.2.7,
                 ; Knossos 0.3.16, io.jepsen/generator 0.1.3 and http-kit
                 ; 2.8.1. Its Java classes are compiled for JDK 21.
                 [jepsen "0.3.13"]
                 ; JSON for the HTTP API; Jepsen has no JSON library of its
                 ; own. No transitive dependencies.
                 [org.clojure/data.json "2.5.1"]]
  :main jepsen.paxos
  :jvm-opts ["-Djava.awt.headless=true"
             "-Djava.net.preferIPv4Stack=true"
             "-server"
             ; Knossos grows fast with indeterminate ops; let the JVM use most
             ; of the control node's memory instead of the default quarter.
             "-XX:MaxRAMPercentage=75"]
  :repl-options {:init-ns jepsen.paxos})
