;; hlocal property bridge: a Proxy-Wasm (ABI 0.2.1) HTTP filter placed before the
;; plugins on stock Envoy.
;;
;; Higress's Envoy answers the top-level properties `route_name` and
;; `cluster_name`; stock Envoy (>= 1.33) only has `xds.route_name` and
;; `xds.cluster_name`. wasm-go reads the top-level names for `_match_route_`,
;; `_match_route_prefix_` and `_match_service_` rules and for RouteCluster, so on
;; stock Envoy those rules silently never match. For an unknown top-level name
;; Envoy falls back to filter state `wasm.<name>`, which proxy_set_property
;; writes. On every request this filter copies
;;   xds.route_name   -> route_name
;;   xds.cluster_name -> cluster_name
;; and continues. A property the host does not have is left unset, so plugins
;; see NotFound exactly as before.
;;
;; Property paths are the segments joined with NUL bytes.
(module
  (import "env" "proxy_get_property"
    (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property"
    (func $set_property (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  ;; Layout of the first page:
  ;;   0..15      unused (keeps address 0 out of use)
  ;;   16, 20     out-parameters of proxy_get_property: value address, value size
  ;;   64         "xds\00route_name"   (14 bytes; "route_name" is its tail at 68)
  ;;   96         "xds\00cluster_name" (16 bytes; "cluster_name" is its tail at 100)
  ;;   1024..     heap for proxy_on_memory_allocate
  (data (i32.const 64) "xds\00route_name")
  (data (i32.const 96) "xds\00cluster_name")

  (global $heap_base i32 (i32.const 1024))
  (global $heap (mut i32) (i32.const 1024))

  (func (export "proxy_abi_version_0_2_1"))

  ;; Bump allocator. The host calls this only while proxy_get_property runs, to
  ;; hand back the value; the value is dead once proxy_set_property has copied
  ;; it into filter state. Nothing outlives one proxy_on_request_headers call,
  ;; so that callback resets the heap instead of freeing. Addresses are 8-byte
  ;; aligned; memory grows when needed, and 0 (failure) is returned if it cannot.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local $limit i32)
    (local.set $ptr (global.get $heap))
    (local.set $end
      (i32.and (i32.add (i32.add (local.get $ptr) (local.get $size)) (i32.const 7))
               (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $ptr))
      (then (return (i32.const 0))))
    (local.set $limit (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $limit))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $limit))
                                    (i32.const 65535))
                           (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "proxy_on_context_create") (param $context_id i32) (param $root_context_id i32))

  (func (export "proxy_on_vm_start") (param $root_context_id i32) (param $vm_config_size i32)
    (result i32)
    (i32.const 1))

  (func (export "proxy_on_configure") (param $root_context_id i32) (param $config_size i32)
    (result i32)
    (i32.const 1))

  ;; Copies the property at path $from to path $to when the host has it.
  (func $copy (param $from i32) (param $from_len i32) (param $to i32) (param $to_len i32)
    (if (i32.eqz (call $get_property (local.get $from) (local.get $from_len)
                                     (i32.const 16) (i32.const 20)))
      (then
        (drop (call $set_property (local.get $to) (local.get $to_len)
                                  (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))

  (func (export "proxy_on_request_headers")
    (param $context_id i32) (param $num_headers i32) (param $end_of_stream i32) (result i32)
    (global.set $heap (global.get $heap_base))
    (call $copy (i32.const 64) (i32.const 14) (i32.const 68) (i32.const 10))
    (call $copy (i32.const 96) (i32.const 16) (i32.const 100) (i32.const 12))
    (i32.const 0)) ;; Continue
)
