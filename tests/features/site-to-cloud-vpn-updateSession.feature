Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation updateSession
  # Implementation indications:
  #   Only while AVAILABLE; a change the network cannot carry is 422 and changes nothing.
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY); a second API client's token.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common updateSession setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions/{sessionId}"
    And the header "Content-Type" is set to "application/merge-patch+json"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the path parameter "sessionId" is set by default to an existing session
    And the request body is set by default to a request body compliant with the schema at "/components/schemas/SessionUpdate"

  @updateSession_01_update_bandwidth
  Scenario: Change the guaranteed bandwidth; GET shows the change
    Given the request body property "$.guaranteeBandwidth" is set to 20
    When the request "updateSession" is sent
    Then the response status code is 200
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"
    And the response property "$.guaranteeBandwidth" is 20
    And reading the session gives the response property "$.guaranteeBandwidth" as 20

  @updateSession_02_update_sla_as_application_json
  Scenario: Change the SLA tier with Content-Type application/json
    Given the header "Content-Type" is set to "application/json"
    And the request body is set to {}
    And the request body property "$.sla" is set to "AA"
    When the request "updateSession" is sent
    Then the response status code is 200
    And the response property "$.sla" is "AA"
    And reading the session gives the response property "$.sla" as "AA"

  @updateSession_03_remove_latency_bound
  Scenario: maxLatency null removes the latency bound
    Given an existing session created with the request body property "$.maxLatency" set to 50
    And the request body is set to {}
    And the request body property "$.maxLatency" is set to null
    When the request "updateSession" is sent
    Then the response status code is 200
    And the response property "$.maxLatency" does not exist

  @updateSession_400.1_schema_not_compliant
  Scenario: Invalid Argument. Unknown property
    Given the request body property "$.serviceName" is set to "renamed"
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @updateSession_400.2_no_request_body
  Scenario: Missing request body
    Given the request body is not included
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @updateSession_400.3_empty_request_body
  Scenario: Empty object as request body
    Given the request body is set to {}
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @updateSession_400.4_out_of_range_bandwidth
  Scenario Outline: Error 400 due to guaranteeBandwidth value out of allowed range
    Given the request body property "$.guaranteeBandwidth" is set to <bandwidth>
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "OUT_OF_RANGE"

    Examples:
      | bandwidth |
      | 0         |
      | 1000001   |

  @updateSession_400.5_invalid_sla
  Scenario: Error 400 due to sla value not matching allowed enum
    Given the request body property "$.sla" is set to "B"
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @updateSession_400.6_invalid_session_id
  Scenario: Invalid Argument. sessionId is not a UUID
    Given the path parameter "sessionId" is set to "not-a-uuid"
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @updateSession_400.7_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "updateSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @updateSession_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "updateSession" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @updateSession_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "updateSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @updateSession_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "updateSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @updateSession_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:update"
    When the request "updateSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @updateSession_403.2_session_token_mismatch
  Scenario: Session not created by the API client given in the access token
    Given the path parameter "sessionId" is set to the id of a session created by another API client
    When the request "updateSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"

  @updateSession_404.1_not_found
  Scenario: sessionId of a non-existing session
    Given the path parameter "sessionId" is set to a random UUID
    When the request "updateSession" is sent
    Then the response status code is 404
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 404
    And the response property "$.code" is "NOT_FOUND"
    And the response property "$.message" contains a user friendly text

  @updateSession_409.1_session_not_available
  Scenario: Changing a session that is not AVAILABLE
    Given the path parameter "sessionId" is set to the id of a session that has expired
    When the request "updateSession" is sent
    Then the response status code is 409
    And the response property "$.status" is 409
    And the response property "$.code" is "INCOMPATIBLE_STATE"

  @updateSession_415.1_unsupported_media_type
  Scenario: The body is not sent as JSON
    Given the header "Content-Type" is set to "text/plain"
    When the request "updateSession" is sent
    Then the response status code is 415
    And the response property "$.code" is "UNSUPPORTED_MEDIA_TYPE"

  @updateSession_422.1_insufficient_resources
  Scenario: A change the network cannot carry leaves the session as it was
    Given the request body property "$.guaranteeBandwidth" is set to 900000
    When the request "updateSession" is sent
    Then the response status code is 422
    And the response property "$.code" is "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"
    And reading the session shows the status "AVAILABLE"
