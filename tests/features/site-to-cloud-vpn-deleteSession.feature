Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation deleteSession
  # Implementation indications:
  #   202; the session reads UNAVAILABLE/DELETE_REQUESTED until the network is torn down, then 404.
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY); a second API client's token.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common deleteSession setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions/{sessionId}"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the path parameter "sessionId" is set by default to an existing session

  @deleteSession_01_delete_existing_session
  Scenario: Delete an existing session
    When the request "deleteSession" is sent
    Then the response status code is 202
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body is empty
    And reading the session eventually answers 404

  @deleteSession_02_event_notification
  Scenario: An event is received if the session was AVAILABLE and a sink was provided
    Given an existing session with a sink the test can read
    When the request "deleteSession" is sent
    Then the response status code is 202
    And an event is received at the sink with "$.data.status" "UNAVAILABLE" and "$.data.statusInfo" "DELETE_REQUESTED"

  @deleteSession_400.1_invalid_session_id
  Scenario: Invalid Argument. sessionId is not a UUID
    Given the path parameter "sessionId" is set to "not-a-uuid"
    When the request "deleteSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @deleteSession_400.2_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "deleteSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @deleteSession_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "deleteSession" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @deleteSession_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "deleteSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @deleteSession_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "deleteSession" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @deleteSession_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:delete"
    When the request "deleteSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @deleteSession_403.2_session_token_mismatch
  Scenario: Session not created by the API client given in the access token
    Given the path parameter "sessionId" is set to the id of a session created by another API client
    When the request "deleteSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"

  @deleteSession_404.1_not_found
  Scenario: sessionId of a non-existing session
    Given the path parameter "sessionId" is set to a random UUID
    When the request "deleteSession" is sent
    Then the response status code is 404
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 404
    And the response property "$.code" is "NOT_FOUND"
    And the response property "$.message" contains a user friendly text

  @deleteSession_404.2_already_deleted
  Scenario: Deleting a session that is already gone
    Given the path parameter "sessionId" is set to the id of a deleted session
    When the request "deleteSession" is sent
    Then the response status code is 404
    And the response property "$.code" is "NOT_FOUND"
